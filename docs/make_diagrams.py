"""Write the diagrams the documentation shows (docs/output.md): ``python docs/make_diagrams.py`` from the repository
root (tests/tools/test_explain.py checks that the committed files are what the code
draws)."""

from pathlib import Path

import tensorcalc as tc

HERE = Path(__file__).resolve().parent

PICTURES = {
    "matrix_product_wrt_X.svg": ("Y[i,j] = X[i,k] W[k,j]", "X"),
}

if __name__ == "__main__":
    for name, (source, wrt) in PICTURES.items():
        (HERE / name).write_text(tc.derive(source, wrt).diagram(), encoding="utf-8")
        print(f"wrote docs/{name}")
