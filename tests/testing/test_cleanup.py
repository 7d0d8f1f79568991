"""The clean-up registry: whatever the harness started and nobody closed is closed at exit,
owners before what they own; what was closed (or forgotten) by its user is left alone.

Run in a child interpreter: closing "everything registered" in this process would also close
the session's own Redis target."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import gc
    from berthcache.testing._cleanup import register_for_cleanup, unregister_for_cleanup

    class Thing:
        def __init__(self, name):
            self.name = name
        def close(self):
            print("closed", self.name, flush=True)

    class Broken(Thing):
        def close(self):
            print("closed", self.name, flush=True)
            raise RuntimeError("stuck")

    member = Thing("member")
    broken = Broken("broken")
    owner = Thing("owner")
    done = Thing("done-by-its-user")
    register_for_cleanup(member)
    register_for_cleanup(broken)
    register_for_cleanup(owner, owner=True)
    register_for_cleanup(done)
    unregister_for_cleanup(done)
    forgotten = Thing("forgotten")
    register_for_cleanup(forgotten)
    del forgotten
    gc.collect()
    print("exiting", flush=True)
    """
)


def test_what_is_left_is_closed_at_exit_owners_first() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "exiting"
    assert lines[1] == "closed owner"  # the owner stops its members in its own order
    # The rest, even after one of them failed to close; never what was closed or forgotten.
    assert sorted(lines[2:]) == ["closed broken", "closed member"]
