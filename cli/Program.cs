using System.CommandLine;
using ModelZoo.Cli.Commands;

var root = new RootCommand("zoo — a model zoo and transfer-learning toolkit for .NET on TorchSharp.");
foreach (var command in CommandRegistry.All()) root.Subcommands.Add(command);
return await root.Parse(args).InvokeAsync();
