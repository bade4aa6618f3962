"""``signoff demo``: the reference flows (``bot.demo.flows``) played on the local sandbox, and
the sandbox page served with the bot (``bot.demo.page``)."""
