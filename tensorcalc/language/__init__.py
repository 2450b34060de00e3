"""The front end: ``syntax`` parses the text (the Lark grammar in ``grammar/``) into a
surface tree, ``declarations`` reads ``input``/``sizes``/``range`` lines, and ``lower``
checks the tree and lowers it to the IR."""
