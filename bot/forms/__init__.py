"""Forms: a run input's JSON schema as a Block Kit modal (``bot.forms.modals``), submitted
values read back into input (``bot.forms.submissions``), Markdown as mrkdwn
(``bot.forms.mrkdwn``) and Slack's Block Kit limits (``bot.forms.blockkit``).

Nothing here sends anything to Slack: these modules build and read payloads only.
"""
