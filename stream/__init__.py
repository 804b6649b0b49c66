"""Command line, replay driver and (later) the Faust worker."""
