"""Text and pictures of the IR: ``printing`` (the language's own text and LaTeX) and
``diagram`` (a program as a graph)."""
