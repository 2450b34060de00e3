"""The playground: ``tensorcalc serve``, a local web page for deriving, seeing and checking.

``actions`` answers the page's requests through the public API (a request in, a JSON-able
answer or error out), ``worker`` runs them in a separate process that can be stopped when
one takes too long, ``server`` is the HTTP server (token, Origin check, size limits), and
``examples`` the built-in programs. The page (``static/``) and KaTeX
(``tensorcalc/assets/katex``) ship in the package: nothing is fetched from the network.
"""
