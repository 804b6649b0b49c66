"""One module per `segmenter` subcommand, each with HELP, register(parser) and run(args)."""
