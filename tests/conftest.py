"""Shared fixtures; the stand-in fixtures live in tests/fixtures/ and are loaded here."""

pytest_plugins = [
    "tests.fixtures.config",
    "tests.fixtures.disks",
    "tests.fixtures.payments",
    "tests.fixtures.phone",
    "tests.fixtures.standins",
    "tests.fixtures.store",
    "tests.fixtures.lane",  # after store: it imports it
    "tests.fixtures.panel",  # after lane: it imports it
    "tests.fixtures.nats",  # after lane: it imports it
    "tests.fixtures.kiosk",
]
