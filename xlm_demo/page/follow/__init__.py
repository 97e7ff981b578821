"""Follow the speaker: a presenter shares their page, and everyone who opens the link follows it live."""
