#!/usr/bin/env python3
"""Prints the recipe field reference (Markdown table) from the XML docs of tasks/Recipes/Recipe.cs.
Used for docs/recipes.md:  python3 scripts/docs/recipe_fields.py"""
import pathlib
import re

root = pathlib.Path(__file__).resolve().parents[2]
src = (root / "tasks/Recipes/Recipe.cs").read_text()
sections = {"Recipe": "", "ModelSection": "model", "SurgeryStep": "model.surgery[]", "DataSection": "data", "TrainSection": "train"}


def snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


print("| key | type | default | meaning |\n| --- | --- | --- | --- |")
for cls, prefix in sections.items():
    body = re.search(r"public sealed class " + cls + r"\s*\{(.*?)\n\}", src, re.S).group(1)
    for doc, typ, name, default in re.findall(r"/// <summary>(.*?)</summary>\s*public ([^ ]+) (\w+) \{ get; set; \}(?: = ([^;]+);)?", body, re.S):
        if typ in ("ModelSection", "DataSection", "TrainSection"):
            continue
        doc = re.sub(r"<c>(.*?)</c>", r"`\1`", doc)
        doc = doc.replace('<see cref="RecipeLoader.DataSources"/>', "the list below")
        doc = re.sub(r'<see cref="(\w+)"/>', lambda m: "`" + snake(m.group(1)) + "`", doc)
        d = (default or "").strip().replace('"', "")
        if not d:
            d = "0" if typ in ("int", "double") else "—"
        key = (prefix + "." if prefix else "") + snake(name)
        typ = typ.replace("List<", "list of ").replace(">", "").replace("?", "")
        print(f"| `{key}` | {typ} | {d} | {doc.strip()} |")
