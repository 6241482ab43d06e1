from pathlib import Path

from vigil.authz.docs import permissions_markdown

DOC = Path(__file__).resolve().parents[3] / "docs" / "permissions.md"


def test_permissions_doc_is_generated_from_the_code() -> None:
    assert DOC.read_text(encoding="utf-8") == permissions_markdown(), (
        "docs/permissions.md is out of date: run `vigil permissions --markdown > docs/permissions.md`"
    )


def test_every_action_names_an_article() -> None:
    from vigil.authz.rules import ACTIONS, Action

    assert set(ACTIONS) == set(Action)
    assert all(info.article.startswith("Art.") for info in ACTIONS.values())
