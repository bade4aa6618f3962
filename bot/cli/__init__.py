"""The ``signoff`` command (``bot.cli.main``) and its sub-commands, one module each."""
