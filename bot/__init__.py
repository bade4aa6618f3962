"""Signoff's Slack side: the app, the ``signoff`` CLI and a local Slack sandbox.

Public entry points for users:

- ``bot.inputs``: ``SlackUser``/``SlackChannel`` field types for input models;
- ``bot.testing.running_bot``: the engine, the served bot and the sandbox, for your tests;
- ``bot.sandbox``: the Slack Web API emulator and the driver that plays people.

The bot talks to the engine only through ``engine``'s public API.
"""
