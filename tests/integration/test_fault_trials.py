"""Five fault trials of tools/faults/trials.py on the mini-cloud: whatever
single fault strikes a run, no guest is held past its budget + 1 s, nothing
leaks, and no set is torn or duplicated. ``make faults`` runs fifty, with
every fault.

Two faults are left out here because they still break a promise (issue 12
stays open for them; ``make faults`` shows them):

* the CLI killed after the agent copied a local drive: the copy stays on
  the compute node until the agent's ``capture_keep`` (600 s), which no API
  lets the reaper see;
* cinder-volume killed while a snapshot is being made: Cinder leaves the
  snapshot ``creating`` for good and refuses to delete it; only an admin's
  reset-state would let the reaper remove it.
"""

import os
import random
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
TRIALS = os.path.join(ROOT, 'tools', 'faults', 'trials.py')
# A new seed each run, in the failure message: a failure can be replayed
# with trials.py --seed.
SEED = int(os.environ.get('FAULT_TRIALS_SEED', random.randrange(10 ** 6)))
FAULTS = ('worker', 'agent', 'nova-compute', 'libvirtd', 'snapshot-error',
          'glance-upload')


def test_five_random_faults_break_no_promise(clouds_yaml):
    result = subprocess.run(
        [sys.executable, TRIALS, '--trials', '5', '--seed', str(SEED),
         '--clouds', clouds_yaml,
         *(arg for fault in FAULTS for arg in ('--fault', fault))],
        capture_output=True, text=True, timeout=900, check=False)

    assert result.returncode == 0, 'seed %d\n%s\n%s' % (
        SEED, result.stdout, result.stderr[-3000:])
