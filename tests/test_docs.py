"""The project's own documentation stands on its own: every link in the README and in docs/
points at something in the repository (or at a web address), never outside the checkout."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

BASE = Path(settings.BASE_DIR)
DOCUMENTS = [BASE / "README.md", *sorted((BASE / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_link_stays_in_the_repository(document):
    for target in LINK.findall(document.read_text()):
        if re.match(r"[a-z]+://", target) or target.startswith("#"):
            continue
        path = (document.parent / target.split("#")[0]).resolve()
        assert path.is_relative_to(BASE), f"{document.name} links outside the repository: {target}"
        assert path.exists(), f"{document.name} links to a missing file: {target}"


def test_the_readme_links_the_api_reference():
    assert "(docs/API.md)" in (BASE / "README.md").read_text()
