"""Randomized fault trials on the mini-cloud: does any single fault strand
a guest, leak a resource, or leave a torn or duplicate set?

    .venv/bin/python tools/faults/trials.py [--trials 50] [--seed S]
        [--budget 10] [--json] [--clouds .state/minicloud/clouds.yaml]

Needs the mini-cloud up (``tools/minicloud/minicloud up``); it is shared,
so nothing here stops it. Each trial starts one run as the demo user, with
``openstack server snapshot create`` -- through the REST API (the worker
executes it) or ``--in-process`` (the CLI holds the guest through the agent
itself) -- at a random level (application, crash, auto), on a random subset
of the drives of ``demo-image`` (image-backed) or ``demo-volume``
(volume-backed), with a budget; and injects one fault when the run's
progress reaches a random step:

    cli              SIGKILL of the in-process CLI
    worker           SIGKILL of snapshot-worker, then started again
    agent            SIGKILL of the compute-side agent, then started again
    cinder-volume    SIGKILL, then started again
    nova-compute     SIGKILL, then started again
    libvirtd         restarted (SIGTERM, then started again, as a service
                     manager restarts it; the guests keep running)
    snapshot-error   the test Cinder driver's switch (``fault-snapshot-error``
                     in its loop_dir) makes snapshots of chosen volumes end
                     in ``error``
    glance-upload    SIGKILL of glance while the set's images are written or
                     uploaded, then started again

The mini-cloud restarts nothing by itself: a killed service is started the
way it starts it (``MiniCloud.start``), and the next trial waits until the
cloud answers again. After each trial it checks the project's promises:

    held      the guest is running and thawed by budget + 1 s after the
              fault (virsh domstate and guest-fsfreeze-status every 50 ms
              from the fault on)
    torn      every set the run made passes tools/faults/consistency.py
              (a consistent cut, every drive checked) unless labelled
              ``none``; a set a killed CLI left unfinished (never usable)
              is no set: its parts must go like any leftover
    duplicate at most one set per run
    stray     a run that failed left no set, one that succeeded left one
    leaked    once the run ended and the worker's reaper
              (``snapshot-dashboard-worker --reap-once``, when it exists)
              ran past its grace, nothing tagged with the run
              (``snapshot_set_run``) remains outside its set; nor a new
              copy in the agent's capture_dir

It prints a table per fault, each broken promise with the trial, fault,
step and what was left, and exits 1 if any trial broke one (2 if the
harness could not judge some trial: a clean run judged every one). It
deletes the sets and the leftovers it finds afterwards, and what the run
of a trial it could not judge made. Asserts nothing.
"""

import argparse
import collections
import dataclasses
import datetime
import importlib.util
import json
import os
import queue
import random
import re
import signal
import subprocess
import sys
import threading
import time
import traceback

import openstack.config

from snapshot_dashboard.cli import service_client
from snapshot_dashboard.orchestration import agent as agent_module
from snapshot_dashboard.orchestration import capture
from snapshot_dashboard.orchestration import clients as clients_module
from snapshot_dashboard.orchestration import properties
from snapshot_dashboard.orchestration import run as run_module
from snapshot_dashboard.orchestration import sets

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
STATE = os.path.join(REPO, '.state', 'minicloud')
AGENT_URL = 'http://127.0.0.1:9797'
SERVERS = ('demo-image', 'demo-volume')
LEVELS = ('application', 'crash', 'auto')
POLL_S = 0.05
RUN_POLL_S = 0.1
# Steps a fault may be injected at, as (step, state) of the run's events.
STEPS = (('preflight', 'done'), ('open-window', 'started'),
         ('open-window', 'done'), ('capture', 'started'),
         ('close-window', 'started'), ('close-window', 'done'),
         ('package', 'started'), ('package', 'done'),
         ('upload', 'started'))
HOLD_STEPS = STEPS[1:6]
UPLOAD_STEPS = STEPS[6:]
FAULTS = ('cli', 'worker', 'agent', 'cinder-volume', 'nova-compute',
          'libvirtd', 'snapshot-error', 'glance-upload')
# Where the fault is injected and which service it kills and restarts.
KILLED = {'worker': 'snapshot-worker', 'agent': 'agent',
          'cinder-volume': 'cinder-volume', 'nova-compute': 'nova-compute',
          'libvirtd': 'libvirtd', 'glance-upload': 'glance'}
SWITCH = 'fault-snapshot-error'  # tools/minicloud/minicloud_cinder.py
EVENT_LINE = re.compile(r'^(?P<step>[a-z-]+) (?P<state>started|done|failed)'
                        r'(?: (?P<device>/dev/\w+))?(?:: (?P<detail>.*))?$')
RESOURCE_LINE = re.compile(r'(volume snapshot|image|agent copy) '
                           r'([0-9a-f-]{36})')
# Another test of the shared cloud holds the guest, or runs on the server.
BUSY = re.compile(r'already held|409|is held|another run|in progress',
                  re.IGNORECASE)
BUSY_RETRIES = 20
RUN_TIMEOUT_S = 300
SET_USABLE_TIMEOUT_S = 120
SETTLE_TIMEOUT_S = 30
TRANSIENT_SNAPSHOT = {'creating', 'deleting'}
# Not 'queued': an image whose upload never began stays queued for good.
TRANSIENT_IMAGE = {'saving', 'importing', 'uploading'}


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


consistency = _load('consistency', os.path.join(HERE, 'consistency.py'))
minicloud = _load('minicloud', os.path.join(REPO, 'tools', 'minicloud',
                                             'minicloud.py'))


def log(message):
    print('trials: %s' % message, file=sys.stderr, flush=True)


def utcnow():
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def parse_time(text):
    """An API timestamp (UTC, with or without fraction or Z) as naive UTC."""
    text = (text or '').rstrip('Z').split('+')[0]
    for form in ('%Y-%m-%dT%H:%M:%S.%f', '%Y-%m-%dT%H:%M:%S'):
        try:
            return datetime.datetime.strptime(text, form)
        except ValueError:
            continue
    return None


# -- the cloud's services -------------------------------------------------

class Services:
    """Kill and start the mini-cloud's services the way it starts them."""

    def __init__(self, state, admin):
        self.cloud = minicloud.MiniCloud(state)
        self.admin = admin

    def kill(self, name):
        """SIGKILL the service and every process below it (cinder-volume's
        worker, gunicorn's): a crash of the whole service."""
        pid = self.cloud.pid_of(name)
        if not pid:
            return False
        for each in minicloud.descendants([pid]):
            try:
                os.kill(each, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while self.cloud.pid_of(name) and time.monotonic() < deadline:
            time.sleep(0.02)
        return True

    def restart_libvirtd(self):
        """What ``systemctl restart libvirtd`` does: SIGTERM to the daemon
        alone (its guests are not its children and keep running)."""
        pid = self.cloud.pid_of('libvirtd')
        if pid:
            self.cloud.stop_pids([pid], grace_s=15)
        self.start('libvirtd')

    def start(self, name):
        since = utcnow()
        self.cloud.start(name)
        self.wait_healthy(name, since)

    def wait_healthy(self, name, since=None, timeout_s=240):
        cloud = self.cloud
        if not cloud.pid_of(name):
            cloud.start(name)
        ports = {'glance': 'glance', 'agent': 'agent',
                 'snapshot-api': 'snapshot-api', 'keystone': 'keystone',
                 'nova-api': 'nova-api', 'cinder-api': 'cinder-api'}
        if name in ports:
            cloud.wait_for(name, lambda: cloud.answers(ports[name]),
                           timeout_s=timeout_s, interval_s=0.2)
        elif name == 'libvirtd':
            cloud.wait_for('libvirtd', lambda: subprocess.run(
                ['virsh', '-c', 'qemu:///system', 'version'],
                capture_output=True, check=False).returncode == 0,
                timeout_s=timeout_s, interval_s=0.2)
        elif name == 'nova-compute':
            cloud.wait_for('nova-compute', lambda: self._service_up(
                self.admin.nova.services.list(binary='nova-compute'),
                since), timeout_s=timeout_s)
        elif name == 'cinder-volume':
            cloud.wait_for('cinder-volume', lambda: self._service_up(
                self.admin.cinder.services.list(binary='cinder-volume'),
                since) and cloud.scheduler_sees_pool(), timeout_s=timeout_s)

    @staticmethod
    def _service_up(listed, since):
        for service in listed:
            updated = parse_time(service.updated_at)
            # Reported after ``since``: by the new process (the database
            # keeps whole seconds, so the second of ``since`` is not enough).
            if service.state == 'up' and (since is None or (
                    updated and updated > since)):
                return True
        return False

    def ensure_all(self):
        """Every service running and answering; the names it had to
        start (a dead service is the harness's or another test's doing)."""
        started = [name for name in self.cloud.services()
                   if not self.cloud.pid_of(name)]
        for name in started:
            self.start(name)
        for name in ('glance', 'agent', 'snapshot-api'):
            self.wait_healthy(name)
        return started

    @property
    def loop_dir(self):
        return consistency.find_loop_dir(self.cloud.state)

    @property
    def capture_dir(self):
        return os.path.join(self.cloud.data, 'agent', 'captures')

    def reaper(self):
        """The worker's reaper command, or None if it has none yet."""
        binary = self.cloud.bin('snapshot-dashboard-worker')
        env = dict(os.environ, **self.cloud.django_env())
        helped = subprocess.run([binary, '--help'], capture_output=True,
                                text=True, env=env, check=False)
        if '--reap-once' not in helped.stdout:
            return None
        return lambda grace_s: subprocess.run(
            [binary, '--reap-once', '--grace-seconds', str(grace_s)],
            capture_output=True, text=True, env=env, timeout=300,
            check=False)


# -- the guest ------------------------------------------------------------

def virsh(*args, timeout=10):
    try:
        result = subprocess.run(['virsh', '-c', 'qemu:///system', *args],
                                capture_output=True, text=True,
                                timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def guest_state(domain):
    """'paused', 'frozen', 'free', or None when libvirt or the guest agent
    cannot say (libvirtd restarting)."""
    state = virsh('domstate', domain)
    if state is None:
        return None
    if state != 'running':
        return 'paused' if state == 'paused' else state
    answer = virsh('qemu-agent-command', domain,
                   json.dumps({'execute': 'guest-fsfreeze-status'}),
                   '--timeout', '2')
    try:
        return 'frozen' if json.loads(answer)['return'] == 'frozen' \
            else 'free'
    except (TypeError, ValueError, KeyError):
        return None


class GuestWatch(threading.Thread):
    """From the fault on, the guest's state every 50 ms: how long it stayed
    held (paused, frozen, or unknown) after the fault."""

    def __init__(self, domain):
        super().__init__(daemon=True)
        self.domain = domain
        self.started_at = time.monotonic()
        self.stop = threading.Event()
        self.released_at = None
        self.last_held = None  # state seen last before the release
        self.unknown = 0

    def run(self):
        while not self.stop.is_set():
            state = guest_state(self.domain)
            now = time.monotonic()
            if state == 'free':
                self.released_at = now
                return
            if state is None:
                self.unknown += 1
            self.last_held = state or 'unknown'
            time.sleep(POLL_S)

    @property
    def held_s(self):
        end = self.released_at or time.monotonic()
        return end - self.started_at


# -- one trial ------------------------------------------------------------

@dataclasses.dataclass
class Trial:
    number: int
    fault: str
    mode: str  # 'service' or 'in-process'
    server: str
    level: str
    devices: list
    step: tuple
    budget: int
    failing_volumes: list = dataclasses.field(default_factory=list)
    injected_at_step: str | None = None
    run_ids: list = dataclasses.field(default_factory=list)
    resource_ids: list = dataclasses.field(default_factory=list)
    new_runs: list = dataclasses.field(default_factory=list)
    run_state: str | None = None
    run_error: str | None = None
    set_ids: list = dataclasses.field(default_factory=list)
    held_s: float | None = None
    # From the first sight of open-window started (a lower bound).
    held_since_open_s: float | None = None
    held_state: str | None = None
    leaked: list = dataclasses.field(default_factory=list)
    reaped: list = dataclasses.field(default_factory=list)
    torn: list = dataclasses.field(default_factory=list)
    duplicate: bool = False
    stray: str | None = None
    harness_error: str | None = None
    notes: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    @property
    def held_too_long(self):
        return self.held_s is not None and self.held_s > self.budget + 1

    @property
    def broken(self):
        return bool(self.held_too_long or self.leaked or self.torn
                    or self.duplicate or self.stray)

    def describe(self):
        return ('#%d %s (%s, %s, %s %s, budget %d s, at %s)' % (
            self.number, self.fault, self.mode, self.server, self.level,
            ','.join(self.devices), self.budget,
            self.injected_at_step or ' '.join(self.step)))


class NotExercised(Exception):
    """The run ended before the fault's step: try the trial again."""


class Harness:
    def __init__(self, args, rng):
        self.args = args
        self.rng = rng
        config = openstack.config.OpenStackConfig(config_files=[args.clouds])
        demo_region = config.get_one('minicloud-demo')
        self.demo = clients_module.Clients(demo_region.get_session(),
                                           region_name=demo_region.region_name)
        admin_region = config.get_one('minicloud-admin')
        self.admin = clients_module.Clients(
            admin_region.get_session(), region_name=admin_region.region_name)
        self.service = service_client.ServiceClient(
            demo_region.get_session(), region_name=demo_region.region_name)
        self.services = Services(os.path.dirname(os.path.abspath(
            args.clouds)), self.admin)
        self.reap = self.services.reaper()
        self.env = dict(os.environ, OS_CLIENT_CONFIG_FILE=args.clouds)
        self.env.pop('SNAPSHOT_DASHBOARD_AGENT_URL', None)
        self.servers = {}
        for name in SERVERS:
            server = [s for s in self.demo.nova.servers.list()
                      if s.name == name][0]
            domain = self.admin.nova.servers.get(server.id).to_dict()[
                'OS-EXT-SRV-ATTR:instance_name']
            capturers = capture.locate(
                self.demo, capture.RunContext('', server.id),
                agent_module.AgentLocator(AGENT_URL))
            plan = run_module.plan_snapshot_set(self.demo, server.id,
                                                capturers=capturers)
            self.servers[name] = {
                'id': server.id, 'domain': domain,
                'drives': {d.name: d for d in plan.devices}}

    # -- choosing ---------------------------------------------------------

    def choose(self, number, rng):
        faults = self.args.faults or FAULTS
        fault = faults[(number - 1) % len(faults)] if self.args.round_robin \
            else rng.choice(faults)
        mode = ('in-process' if fault == 'cli' else 'service'
                if fault == 'worker' else rng.choice(('service',
                                                      'in-process')))
        server = rng.choice(SERVERS)
        drives = self.servers[server]['drives']
        names = sorted(drives)
        volumes = [n for n in names if drives[n].kind.endswith('volume')]
        local = [n for n in names if n not in volumes]
        if fault == 'glance-upload':
            server = 'demo-image'
            drives = self.servers[server]['drives']
            names = sorted(drives)
            local = [n for n in names if not drives[n].kind.endswith(
                'volume')]
            volumes = [n for n in names if n not in local]
        devices = sorted(rng.sample(names, rng.randint(1, len(names))))
        if fault == 'snapshot-error' and not set(devices) & set(volumes):
            devices = sorted(set(devices) | {rng.choice(volumes)})
        if fault == 'glance-upload' and not set(devices) & set(local):
            devices = sorted(set(devices) | {rng.choice(local)})
        if fault == 'snapshot-error':
            step = ('open-window', 'started')
        elif fault == 'glance-upload':
            step = rng.choice(UPLOAD_STEPS)
        elif fault in ('cli', 'worker'):
            step = rng.choice(STEPS)
        else:
            step = rng.choice(STEPS[:-1])
        if mode == 'service' and step == ('upload', 'started'):
            pass  # the worker waits for the upload too
        trial = Trial(number, fault, mode, server, rng.choice(LEVELS),
                      devices, step, self.args.budget)
        if fault == 'snapshot-error':
            chosen = [d for d in devices if d in volumes]
            trial.failing_volumes = [
                drives[d].volume_id for d in
                rng.sample(chosen, rng.randint(1, len(chosen)))]
        return trial

    # -- state of the project -----------------------------------------------

    def tagged(self):
        """Volume snapshots and images of the demo project carrying a run:
        {run id: [(kind, id, status, created_at, record)]}."""
        found = collections.defaultdict(list)
        for snapshot in _listed(self.demo.cinder.volume_snapshots.list):
            run_id = (snapshot.metadata or {}).get(properties.RUN)
            if run_id:
                found[run_id].append(('volume-snapshot', snapshot.id,
                                      snapshot.status, snapshot.created_at,
                                      snapshot.metadata))
        for image in _listed(lambda: list(self.demo.glance.images.list(
                filters={'owner': self.demo.project_id}))):
            run_id = image.get(properties.RUN)
            if run_id:
                found[run_id].append(('image', image['id'], image['status'],
                                      image['created_at'], dict(image)))
        return found

    def captures(self):
        try:
            return set(os.listdir(self.services.capture_dir))
        except OSError:
            return set()

    def copy_times(self, copies):
        """When the agent made each copy's folder, as naive UTC."""
        times = []
        for capture_id in copies:
            try:
                made = os.stat(os.path.join(self.services.capture_dir,
                                            capture_id)).st_mtime
            except OSError:
                continue
            times.append(datetime.datetime.fromtimestamp(
                made, datetime.UTC).replace(tzinfo=None))
        return times

    # -- running ------------------------------------------------------------

    def run_trial(self, trial):
        started = time.monotonic()
        server = self.servers[trial.server]
        before_runs = set(self.tagged())
        before_captures = self.captures()
        if trial.failing_volumes:
            self.switch(trial.failing_volumes)
        try:
            try:
                if trial.mode == 'service':
                    watch, opened_at = self.through_service(trial, server)
                else:
                    watch, opened_at = self.in_process(trial, server)
            finally:
                if trial.failing_volumes:
                    self.switch(None)
            self.finish_watch(trial, watch, opened_at)
            started_services = self.services.ensure_all()
            if started_services:
                trial.notes.append('had to start %s' % ', '.join(
                    started_services))
        except BaseException:
            # Not judged: what its run made must not fill the project's
            # quota for the trials after it.
            self.discard(trial, server, before_runs, before_captures)
            raise
        self.judge(trial, server, before_runs, before_captures)
        trial.seconds = time.monotonic() - started

    def discard(self, trial, server, before_runs, before_captures):
        """Delete what the runs of a trial that was not judged made: its
        sets, then whatever else carries their tags, and new agent copies.
        """
        try:
            self.services.ensure_all()
            tagged = self.settle(trial, server, before_runs)
            run_ids = set(trial.run_ids) | set(trial.new_runs)
            for run_id in run_ids:
                for item in tagged.get(run_id, []):
                    if (item[0] == 'image' and item[4].get(
                            properties.SET_ID) == item[1]
                            and item[1] not in trial.set_ids):
                        trial.set_ids.append(item[1])
            tagged = self.tagged()
            self.clean(trial, [
                (run_id, kind, resource_id, status)
                for run_id in run_ids for kind, resource_id, status, _, _
                in tagged.get(run_id, [])], server,
                self.captures() - before_captures)
        except Exception as e:  # noqa: BLE001 - noted; the trial failed
            trial.notes.append('discarding what the trial made: %s' % e)

    def switch(self, volume_ids):
        path = os.path.join(self.services.loop_dir, SWITCH)
        if volume_ids is None:
            if os.path.exists(path):
                os.unlink(path)
            return
        with open(path, 'w') as f:
            f.write('\n'.join(volume_ids) + '\n')

    def command(self, trial, server, *extra):
        command = [os.path.join(os.path.dirname(sys.executable),
                                'openstack'),
                   '--os-cloud', 'minicloud-demo', 'server', 'snapshot',
                   'create', server['id'], '--consistency', trial.level,
                   '--budget', str(trial.budget), '-f', 'json',
                   '--name', 'fault-trial-%d' % trial.number]
        for device in trial.devices:
            command += ['--device', device]
        return command + list(extra)

    def inject(self, trial, server, process=None):
        """The fault; a GuestWatch started at its moment."""
        time.sleep(self.rng.uniform(0, 0.2) if self.args.jitter else 0)
        watch = GuestWatch(server['domain'])
        watch.start()
        if trial.fault == 'cli':
            process.send_signal(signal.SIGKILL)
        elif trial.fault == 'libvirtd':
            self.services.restart_libvirtd()
        elif trial.fault in KILLED:
            name = KILLED[trial.fault]
            self.services.kill(name)
            trial.notes.append('%s killed' % name)
            self.services.start(name)
        return watch

    def through_service(self, trial, server):
        for attempt in range(BUSY_RETRIES):
            result = subprocess.run(self.command(trial, server),
                                    capture_output=True, text=True,
                                    env=self.env, timeout=120, check=False)
            if result.returncode == 0:
                break
            if not BUSY.search(result.stderr) or attempt == BUSY_RETRIES - 1:
                raise RuntimeError('create failed: %s' % result.stderr[-600:])
            time.sleep(3)
        queued = json.loads(result.stdout)
        run_id = queued['id']
        trial.run_ids.append(run_id)
        watch = opened_at = None
        deadline = time.monotonic() + RUN_TIMEOUT_S
        current = queued
        while True:
            try:
                current = self.service.get_run(run_id)
            except Exception as e:  # noqa: BLE001 - the API may be restarting
                trial.notes.append('reading the run: %s' % e)
                time.sleep(1)
                continue
            if opened_at is None and any(
                    e.get('step') == 'open-window' for e in current['events']):
                opened_at = time.monotonic()
            if watch is None:
                for event in current['events']:
                    if (event.get('step'), event.get('state')) == trial.step:
                        trial.injected_at_step = '%s %s' % trial.step
                        watch = self.inject(trial, server)
                        break
            if current['state'] in ('succeeded', 'failed'):
                break
            if time.monotonic() > deadline:
                trial.notes.append('run still %s after %d s' % (
                    current['state'], RUN_TIMEOUT_S))
                break
            time.sleep(RUN_POLL_S)
        trial.run_state = current['state']
        trial.run_error = current.get('error')
        if watch is None:
            if BUSY.search(current.get('error') or ''):
                raise NotExercised(current.get('error'))
            if trial.fault != 'snapshot-error':
                raise NotExercised('run %s %s before %s %s: %s' % (
                    run_id, current['state'], *trial.step,
                    current.get('error')))
        if current.get('set_id'):
            trial.set_ids.append(current['set_id'])
        return watch, opened_at

    def in_process(self, trial, server):
        for attempt in range(BUSY_RETRIES):
            process = subprocess.Popen(
                self.command(trial, server, '--in-process', '--agent-url',
                             AGENT_URL, '--wait', '-v'),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env=self.env)
            lines = queue.Queue()
            reader = threading.Thread(target=_pump,
                                      args=(process.stderr, lines),
                                      daemon=True)
            reader.start()
            watch, opened_at, log_lines = None, None, []
            while True:
                try:
                    line = lines.get(timeout=RUN_TIMEOUT_S)
                except queue.Empty:
                    process.kill()
                    trial.notes.append('CLI silent for %d s: killed'
                                       % RUN_TIMEOUT_S)
                    break
                if line is None:
                    break
                log_lines.append(line)
                match = EVENT_LINE.match(line.strip())
                if match and match['step'] == 'open-window' and \
                        opened_at is None:
                    opened_at = time.monotonic()
                if match is None or watch is not None:
                    continue
                if (match['step'], match['state']) == trial.step:
                    trial.injected_at_step = '%s %s' % trial.step
                    watch = self.inject(trial, server, process)
            out = process.stdout.read()
            code = process.wait()
            text = ''.join(log_lines)
            for resource in RESOURCE_LINE.finditer(text):
                trial.notes.append('%s %s' % resource.groups())
            if code == 0:
                trial.run_state = 'succeeded'
                trial.set_ids.append(json.loads(out)['id'])
            else:
                trial.run_state = ('killed' if code == -signal.SIGKILL
                                   else 'failed')
                trial.run_error = text.strip().splitlines()[-1][-300:] \
                    if text.strip() else 'exit %d' % code
            trial.notes = [n for n in trial.notes if not RESOURCE_LINE.match(
                n)] + ['log: %s' % ' | '.join(
                    ln.strip() for ln in log_lines
                    if EVENT_LINE.match(ln.strip()))[-1500:]]
            if watch is None and trial.fault != 'snapshot-error':
                if (BUSY.search(text) and trial.run_state == 'failed'
                        and attempt < BUSY_RETRIES - 1):
                    time.sleep(3)
                    continue
                raise NotExercised('CLI %s before %s %s: %s' % (
                    trial.run_state, *trial.step, trial.run_error))
            trial.resource_ids = RESOURCE_LINE.findall(text)
            return watch, opened_at
        raise NotExercised('busy')

    def finish_watch(self, trial, watch, opened_at):
        if watch is None:
            return
        watch.join(timeout=trial.budget + 30)
        watch.stop.set()
        watch.join()
        trial.held_s = round(watch.held_s, 2)
        if opened_at is not None:
            trial.held_since_open_s = round(
                (watch.released_at or time.monotonic()) - opened_at, 2)
        trial.held_state = watch.last_held
        if watch.unknown:
            trial.notes.append('guest state unknown %d times' % watch.unknown)

    # -- judging --------------------------------------------------------------

    def judge(self, trial, server, before_runs, before_captures):
        tagged = self.settle(trial, server, before_runs)
        if trial.mode == 'in-process':
            known = set()
            for _, resource_id in trial.resource_ids:
                for run_id, items in tagged.items():
                    if any(item[1] == resource_id for item in items):
                        known.add(run_id)
            trial.run_ids = sorted(known | set(trial.new_runs))
        mine = {run_id: tagged.get(run_id, []) for run_id in trial.run_ids}
        found_sets = [item for items in mine.values() for item in items
                      if item[0] == 'image'
                      and item[4].get(properties.SET_ID) == item[1]]
        for set_image in found_sets:
            if set_image[1] not in trial.set_ids:
                trial.set_ids.append(set_image[1])
        if len(found_sets) > 1:
            trial.duplicate = True
        if trial.run_state == 'succeeded' and not found_sets:
            trial.stray = 'the run succeeded, yet no set is tagged with it'
        members = set()
        for set_image in found_sets:
            members |= self.check_set(trial, set_image[1],
                                      trial.run_state != 'failed')
        if trial.run_state == 'failed' and members:
            trial.stray = 'the run failed (%s), yet it left set %s' % (
                trial.run_error, ', '.join(s[1] for s in found_sets))
        leftovers = self.leftovers(mine, members)
        copies = self.captures() - before_captures
        if (leftovers or copies) and self.reap:
            # Past the grace of the newest leftover, by the cloud's clock
            # (an agent copy's, by its folder's).
            newest = max([parse_time(item[3]) for items in mine.values()
                          for item in items] + self.copy_times(copies),
                         default=None)
            if newest is not None:
                wait_s = self.args.reap_grace + 2 - (
                    utcnow() - newest).total_seconds()
                if wait_s > 0:
                    time.sleep(wait_s)
            result = self.reap(self.args.reap_grace)
            trial.reaped = [line for line in result.stdout.splitlines()
                            if any(r in line for r in trial.run_ids)]
            trial.notes.append('the reaper (grace %d s) deleted %d of the '
                               "trial's %d leftovers" % (
                                   self.args.reap_grace, len(trial.reaped),
                                   len(leftovers)))
            if result.returncode:
                trial.notes.append('reaper exit %d: %s' % (
                    result.returncode, result.stderr.strip()[-300:]))
            tagged = self.settle(trial, server, before_runs)
            mine = {run_id: tagged.get(run_id, [])
                    for run_id in trial.run_ids}
            leftovers = self.leftovers(mine, members)
        elif leftovers:
            trial.notes.append('no reaper (snapshot-dashboard-worker '
                               '--reap-once): leftovers counted as found')
        trial.leaked = ['%s %s (%s, run %s)' % (kind, resource_id, status,
                                                run_id)
                        for run_id, kind, resource_id, status in leftovers]
        copies = self.captures() - before_captures
        if copies:
            trial.leaked += ['agent copy %s (in %s)' % (
                c, self.services.capture_dir) for c in sorted(copies)]
        self.clean(trial, leftovers, server, copies)

    def settle(self, trial, server, before_runs):
        """The tagged resources once none is still being made or deleted
        (up to SETTLE_TIMEOUT_S); new run ids on the trial's server noted
        for in-process runs, whose id the CLI does not print."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while True:
            tagged = self.tagged()
            busy = [item for items in tagged.items()
                    if items[0] in trial.run_ids or items[0] not in
                    before_runs for item in items[1]
                    if item[2] in TRANSIENT_SNAPSHOT | TRANSIENT_IMAGE]
            if not busy or time.monotonic() > deadline:
                break
            time.sleep(1)
        trial.new_runs = [
            run_id for run_id, items in tagged.items()
            if run_id not in before_runs and any(
                (item[0] == 'volume-snapshot' and item[4].get(
                    properties.SERVER) == server['id'])
                or (item[0] == 'image' and server['id'] in (
                    item[4].get('instance_uuid'),
                    item[4].get(properties.SERVER))) for item in items)]
        return tagged

    def leftovers(self, mine, members):
        return [(run_id, kind, resource_id, status)
                for run_id, items in mine.items()
                for kind, resource_id, status, _, _ in items
                if resource_id not in members]

    def check_set(self, trial, set_id, may_be_uploading):
        """The set's resources; its problems recorded on the trial."""
        deadline = time.monotonic() + (SET_USABLE_TIMEOUT_S
                                       if may_be_uploading else 0)
        while True:
            snapshot_set = sets.get_set(self.demo, set_id)
            if snapshot_set.status != sets.CREATING or \
                    time.monotonic() > deadline:
                break
            time.sleep(1)
        members = {set_id} | set(snapshot_set.snapshot_ids) | {
            d.image_id for d in snapshot_set.drives if d.image_id}
        if snapshot_set.status != sets.AVAILABLE:
            # Not a set but what is left of one: its parts are leftovers,
            # which the reaper must remove. A run killed while packaging
            # leaves that; any other run must have ended as a set or as
            # nothing.
            if trial.run_state == 'killed':
                trial.notes.append('set %s of the killed run is %s: its '
                                   'parts are leftovers' % (
                                       set_id, snapshot_set.status))
            else:
                trial.torn.append('set %s is %s: not a complete set' % (
                    set_id, snapshot_set.status))
            return set()
        try:
            verdict, readings = consistency.check_set(self.demo, set_id)
        except consistency.DriveUnreadable as e:
            trial.torn.append('set %s: a drive cannot be read: %s' % (
                set_id, e))
            return members
        label = snapshot_set.consistency
        if label == 'none':
            return members
        if not verdict.consistent or verdict.unchecked:
            trial.torn.append('set %s labelled %s: %s' % (set_id, label,
                                                          verdict.reason))
        return members

    def clean(self, trial, leftovers, server, copies):
        for capture_id in copies:
            response = self.demo.session.delete(
                '%s/v1/servers/%s/captures/%s' % (AGENT_URL, server['id'],
                                                  capture_id),
                raise_exc=False)
            if response.status_code not in (200, 404):
                trial.notes.append('deleting agent copy %s: %d' % (
                    capture_id, response.status_code))
        for set_id in trial.set_ids:
            try:
                sets.delete_set(self.demo, set_id)
            except Exception as e:  # noqa: BLE001 - noted, not fatal
                trial.notes.append('deleting set %s: %s' % (set_id, e))
        for _, kind, resource_id, _ in leftovers:
            try:
                if kind == 'volume-snapshot':
                    self.demo.cinder.volume_snapshots.delete(resource_id)
                else:
                    self.demo.glance.images.delete(resource_id)
            except Exception as e:  # noqa: BLE001 - noted, not fatal
                trial.notes.append('deleting %s %s: %s' % (
                    kind, resource_id, e))


def _listed(call):
    for _ in range(3):
        try:
            return call()
        except consistency.DROPPED:
            time.sleep(0.5)
    return call()


def _pump(stream, lines):
    for line in stream:
        lines.put(line)
    lines.put(None)


# -- the report -------------------------------------------------------------

COLUMNS = ('trials', 'held', 'leaked', 'torn', 'duplicate', 'stray',
           'harness')


def tally(trials):
    rows = collections.OrderedDict((fault, collections.Counter())
                                   for fault in FAULTS)
    for trial in trials:
        row = rows[trial.fault]
        row['trials'] += 1
        row['held'] += trial.held_too_long
        row['leaked'] += len(trial.leaked)
        row['torn'] += len(trial.torn)
        row['duplicate'] += trial.duplicate
        row['stray'] += bool(trial.stray)
        row['harness'] += bool(trial.harness_error)
    return rows


def table(trials, seed):
    rows = tally(trials)
    total = collections.Counter()
    out = ['fault trials, seed %d: guests held past budget + 1 s, leaked '
           'resources, torn sets, duplicate sets, runs whose outcome '
           'and sets disagree (stray), harness failures' % seed, '',
           '%-16s' % 'fault' + ''.join('%10s' % c for c in COLUMNS)]
    for fault, row in rows.items():
        total.update(row)
        out.append('%-16s' % fault + ''.join('%10d' % row[c]
                                             for c in COLUMNS))
    out.append('%-16s' % 'total' + ''.join('%10d' % total[c]
                                           for c in COLUMNS))
    timed = [t.seconds for t in trials if t.seconds]
    if timed:
        out.append('')
        out.append('%.0f s per trial on average (%.0f s at most)' % (
            sum(timed) / len(timed), max(timed)))
    broken = [t for t in trials if t.broken or t.harness_error]
    if broken:
        out.append('')
    for trial in broken:
        out.append(trial.describe())
        out.append('    run %s: %s%s' % (
            ', '.join(trial.run_ids) or '-', trial.run_state,
            ' (%s)' % trial.run_error if trial.run_error else ''))
        if trial.held_too_long:
            out.append('    guest still %s %.2f s after the fault' % (
                trial.held_state, trial.held_s))
        for leaked in trial.leaked:
            out.append('    leaked %s' % leaked)
        for torn in trial.torn:
            out.append('    torn: %s' % torn)
        if trial.duplicate:
            out.append('    duplicate sets: %s' % ', '.join(trial.set_ids))
        if trial.stray:
            out.append('    %s' % trial.stray)
        if trial.harness_error:
            out.append('    harness: %s' % trial.harness_error)
        for note in trial.notes:
            out.append('    note: %s' % note)
    return '\n'.join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--trials', type=int, default=50)
    parser.add_argument('--seed', type=int,
                        help='random seed (default: a new one, printed)')
    parser.add_argument('--budget', type=int, default=10,
                        help='budget of each run, seconds')
    parser.add_argument('--reap-grace', type=int, default=30,
                        help="the reaper's grace, seconds: leftovers of a "
                             'trial are reaped once this old')
    parser.add_argument('--fault', dest='faults', action='append',
                        choices=FAULTS,
                        help='only this fault (repeat for more; default: '
                             'all)')
    parser.add_argument('--round-robin', action='store_true',
                        help='faults in turn instead of at random')
    parser.add_argument('--no-jitter', dest='jitter', action='store_false',
                        help='inject exactly at the step, not up to 0.2 s '
                             'after it')
    parser.add_argument('--json', action='store_true',
                        help='print the trials as JSON instead of a table')
    parser.add_argument('--clouds', default=os.path.join(STATE,
                                                         'clouds.yaml'))
    args = parser.parse_args(argv)
    # Trials, not secrets: a seeded generator replays them.
    seed = (args.seed if args.seed is not None
            else random.randrange(10 ** 6))  # noqa: S311
    log('seed %d' % seed)
    rng = random.Random(seed)  # noqa: S311
    harness = Harness(args, rng)
    harness.services.ensure_all()
    if not harness.reap:
        log('the worker has no --reap-once: leftovers are reported as found')
    trials = []
    # SIGUSR1: finish the trial in hand, then print what was seen so far.
    enough = threading.Event()
    signal.signal(signal.SIGUSR1, lambda signum, frame: enough.set())
    for number in range(1, args.trials + 1):
        if enough.is_set():
            log('stopping after %d trials (SIGUSR1)' % len(trials))
            break
        trial = harness.choose(number, rng)
        for attempt in range(3):
            log('trial %s, attempt %d' % (trial.describe(), attempt + 1))
            try:
                harness.run_trial(trial)
                break
            except NotExercised as e:
                log('not exercised: %s' % e)
                trial = dataclasses.replace(
                    trial, notes=[], run_ids=[], set_ids=[], resource_ids=[],
                    injected_at_step=None, run_state=None, run_error=None)
            except Exception as e:  # noqa: BLE001 - reported per trial
                trial.harness_error = '%s: %s' % (type(e).__name__, e)
                log(traceback.format_exc())
                break
        else:
            trial.harness_error = 'not exercised in 3 attempts'
        try:
            harness.services.ensure_all()
        except Exception as e:  # noqa: BLE001 - reported per trial
            trial.harness_error = (trial.harness_error or '') + (
                ' restoring the cloud: %s' % e)
        trials.append(trial)
        log('trial %d: %s in %.0f s; run %s%s, sets %s%s' % (
            number, 'BROKEN' if trial.broken else 'harness failed'
            if trial.harness_error else 'kept', trial.seconds,
            trial.run_state, ' (%s)' % trial.run_error[:200]
            if trial.run_error else '', ', '.join(trial.set_ids) or 'none',
            '; held %.2f s after the fault, %s s after the window opened'
            % (trial.held_s, trial.held_since_open_s)
            if trial.held_s is not None else ''))
    if args.json:
        print(json.dumps({'seed': seed, 'trials': [
            dict(dataclasses.asdict(t), broken=t.broken,
                 held_too_long=t.held_too_long) for t in trials],
            'table': {f: dict(r) for f, r in tally(trials).items()}},
            indent=2, default=str))
    else:
        print(table(trials, seed))
    if any(t.broken for t in trials):
        return 1
    if any(t.harness_error for t in trials):
        return 2  # not every trial was judged: not a clean run
    return 0


if __name__ == '__main__':
    sys.exit(main())
