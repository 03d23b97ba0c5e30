"""Where things are, for tests in any folder of tests/."""

from pathlib import Path

#: The repository's root.
ROOT = Path(__file__).resolve().parents[2]
#: The tests' root folder.
TESTS = ROOT / "tests"
#: Committed test data: the seeds' documents and the extracts of Klaviyo's published specs.
FIXTURES = TESTS / "fixtures"
