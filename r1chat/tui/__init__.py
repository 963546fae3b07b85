"""The chat screen: a Textual app sized for a 40×20 phone terminal and a desktop one.

`r1chat.tui.app.run(args)` is the entry point; it imports Textual, so the
command line imports this package only when the chat screen opens.
"""
