"""Rewrite the settings table in README.md from taiwa.config.SECTIONS (the one place settings are declared)."""

from pathlib import Path

from taiwa.config import settings_reference

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- settings:start -->", "<!-- settings:end -->"


def table() -> str:
    rows = ["| setting | type | default | meaning |", "|---|---|---|---|"]
    for key, typ, default, help_ in settings_reference():
        rows.append(f"| `{key}` | {typ} | `{default}` | {help_.replace('|', '/')} |")
    return "\n".join(rows)


def main() -> None:
    text = README.read_text(encoding="utf-8")
    a, b = text.index(START) + len(START), text.index(END)
    README.write_text(text[:a] + "\n" + table() + "\n" + text[b:], encoding="utf-8")


if __name__ == "__main__":
    main()
