"""Five fault trials of tools/faults/trials.py on the mini-cloud: whatever
single fault strikes a run, no guest is held past its budget + 1 s, nothing
leaks, and no set is torn or duplicated; and every trial is judged (the
harness did not fail). ``make faults`` runs fifty.
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


def test_five_random_faults_break_no_promise(clouds_yaml):
    result = subprocess.run(
        [sys.executable, TRIALS, '--trials', '5', '--seed', str(SEED),
         '--clouds', clouds_yaml],
        capture_output=True, text=True, timeout=900, check=False)

    assert result.returncode == 0, 'seed %d\n%s\n%s' % (
        SEED, result.stdout, result.stderr[-3000:])
