"""The Slack side: the Bolt app, its listeners, the notifier that posts prompts and
reminders, App Home, one-click decisions, the HTTP server and the request edge.

``bot.slack.server.Server`` serves it; ``bot.slack.app.create_app`` builds the Bolt app.
Modals come from ``bot.forms``.
"""
