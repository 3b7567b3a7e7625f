"""Where the tests find the project: ROOT (the checkout) and TESTS (this folder), wherever a test file lives."""

from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
