"""MkDocs hooks: serve the KaTeX that ships inside the package (tensorcalc/assets/katex) as
the site's math renderer, so that the site renders math offline and the repository holds
one copy of it."""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File, Files

KATEX = Path(__file__).resolve().parent.parent / "tensorcalc" / "assets" / "katex"


def on_files(files: Files, config) -> Files:  # noqa: ANN001 - MkDocs' hook signature
    """Add every KaTeX file (js, css, fonts) to the site under assets/katex/."""
    for path in sorted(KATEX.rglob("*")):
        if path.is_file() and path.suffix in {".js", ".css", ".woff2"}:
            uri = "assets/katex/" + path.relative_to(KATEX).as_posix()
            files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files
