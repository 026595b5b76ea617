// HardenImage pipeline. Reads like the data flow in docs/architecture.md: each task is a few lines that call
// the `harden` CLI, so CI can call the same CLI stage by stage. Options come from arguments or cake.config.
#load "build/options.cake"
#load "build/harden.cake"
#load "build/stages.cake"

RunTarget(Options.Target);
