"""The mini-cloud: real OpenStack services and real guests on one machine.

Run through ``tools/minicloud/minicloud up|down|status``, which installs the
Debian packages and the virtualenv first. Everything listens on 127.0.0.1
and lives in one git-ignored state folder: configuration, databases, images,
volumes, instances, logs and the PID of every process started.
"""

import argparse
import configparser
import getpass
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
REGION = 'RegionOne'
HOST = 'minicloud'
PORTS = {'keystone': 5000, 'glance': 9292, 'placement': 8778,
         'nova-api': 8774, 'cinder-api': 8776, 'network': 9696,
         'mariadb': 3306, 'rabbitmq': 5672, 'agent': 9797,
         'snapshot-api': 9798, 'memcached': 11212}
DATABASES = ['keystone', 'glance', 'placement', 'nova_api', 'nova',
             'nova_cell0', 'cinder']
# The runs and schedules of snapshot sets (the REST API, the worker and the
# demo's Horizon): a database of their own, with a user of their own.
SNAPSHOT_DATABASE = 'snapshot_dashboard'
SNAPSHOT_DB_USER = 'snapshot_dashboard'
SERVICE_USERS = ['glance', 'placement', 'nova', 'cinder']
# The plugin's own service user: trusts and the admin-only host lookup.
PLUGIN_USER = 'snapshot-dashboard'
# The REST API's entry in the catalog.
SNAPSHOT_SERVICE_TYPE = 'snapshot-sets'
# Users of the demo project besides demo: one who may only read.
DEMO_READER = 'demo-reader'
FLAVOR = 'snap.tiny'
GUEST_IMAGE = 'snapguest'


def redact(text):
    """Credentials in URLs and after --password are not for the logs."""
    text = re.sub(r'(://[^:/@\s]+:)[^@\s]+@', r'\1***@', text)
    return re.sub(r'(--(?:bootstrap-)?password )\S+', r'\1***', text)


def boot_time():
    with open('/proc/stat') as f:
        for line in f:
            if line.startswith('btime '):
                return int(line.split()[1])
    return 0


def alive(pid):
    """Whether ``pid`` runs. A process that died as a child of this one
    (the fault trials kill and start services from one process) stays a
    zombie until waited for: it is reaped here, and counts as dead."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass  # not our child: its parent, or init, reaps it
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except (OSError, IndexError):
        return False


def descendants(pids):
    """``pids`` and every process below them (their children, and so on)."""
    children = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open('/proc/%s/stat' % entry) as f:
                    parent = int(f.read().rsplit(')', 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = set(), list(pids)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return found


def log(message):
    print('minicloud: %s' % message, file=sys.stderr, flush=True)


class MiniCloud:
    def __init__(self, state):
        self.state = os.path.abspath(state)
        self.venv = os.path.join(self.state, 'venv')
        self.etc = os.path.join(self.state, 'etc')
        self.data = os.path.join(self.state, 'data')
        self.logs = os.path.join(self.state, 'log')
        self.pids = os.path.join(self.state, 'run')
        self.secrets_file = os.path.join(self.state, 'secrets.json')

    # -- small helpers --------------------------------------------------------

    def bin(self, name):
        return os.path.join(self.venv, 'bin', name)

    def conf(self, service):
        return os.path.join(self.etc, service, service + '.conf')

    @property
    def secrets(self):
        names = (['db', 'snapshot-db', 'admin', 'demo', 'demo2', DEMO_READER,
                  'rabbit', 'django', PLUGIN_USER] + SERVICE_USERS)
        values = {}
        if os.path.exists(self.secrets_file):
            with open(self.secrets_file) as f:
                values = json.load(f)
        if set(names) - set(values):
            # A state folder from before a user was added gets its secret.
            values.update({name: secrets.token_hex(12) for name in names
                           if name not in values})
            os.makedirs(self.state, exist_ok=True)
            with open(self.secrets_file, 'w') as f:
                json.dump(values, f)
            os.chmod(self.secrets_file, 0o600)
        return values

    def db_url(self, name):
        return 'mysql+pymysql://openstack:%s@127.0.0.1:%d/%s' % (
            self.secrets['db'], PORTS['mariadb'], name)

    def database(self, name):
        """A service's [database] section. Its pool holds a connection per
        request it serves at once: a connection made per request (PyMySQL
        loads the system's CA certificates for each) costs more than the
        request."""
        return {'connection': self.db_url(name), 'max_pool_size': '20'}

    @property
    def transport_url(self):
        return 'rabbit://guest:guest@127.0.0.1:%d/' % PORTS['rabbitmq']

    def url(self, service, path=''):
        return 'http://127.0.0.1:%d%s' % (PORTS[service], path)

    def run(self, *command, env=None, **kwargs):
        full_env = dict(os.environ, **(env or {}))
        result = subprocess.run(command, env=full_env, capture_output=True,
                                text=True, check=False, **kwargs)
        if result.returncode:
            raise RuntimeError(redact('%s failed:\n%s%s' % (
                ' '.join(command), result.stdout, result.stderr)))
        return result.stdout

    def write_ini(self, path, sections):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        parser = configparser.RawConfigParser()
        parser.optionxform = str
        for section, options in sections.items():
            if section != 'DEFAULT':
                parser.add_section(section)
            for key, value in options.items():
                parser.set(section, key, str(value))
        with open(path, 'w') as f:
            parser.write(f)

    def auth_section(self, user):
        return {'auth_type': 'password', 'auth_url': self.url('keystone'),
                'username': user, 'password': self.secrets[user],
                'user_domain_name': 'Default', 'project_name': 'service',
                'project_domain_name': 'Default', 'region_name': REGION}

    def authtoken(self, user):
        section = self.auth_section(user)
        section.update({'www_authenticate_uri': self.url('keystone'),
                        'service_token_roles_required': 'true',
                        # As devstack: one token cache per cloud. The
                        # in-process one is a pool of separate caches, so
                        # requests arriving together each ask Keystone.
                        'memcached_servers': '127.0.0.1:%d'
                        % PORTS['memcached']})
        return section

    # -- processes ------------------------------------------------------------

    def services(self):
        """name -> (command, environment), in start order."""
        gunicorn = [self.bin('gunicorn'), '--no-control-socket',
                    '--workers', '1', '--threads', '8', '--timeout', '600',
                    '--pythonpath', os.path.join(HERE, 'wsgi')]

        def api(service, module, workers=None):
            command = gunicorn + ['--bind', '127.0.0.1:%d' % PORTS[service],
                                  module + ':application']
            if workers:
                command[command.index('--workers') + 1] = str(workers)
            return command

        def daemon(binary, conf):
            return [self.bin(binary), '--config-file', self.conf(conf)]

        rabbit = os.path.join(self.data, 'rabbitmq')
        cinder_path = os.pathsep.join([HERE, os.environ.get('PYTHONPATH',
                                                            '')])
        return {
            'memcached': (['/usr/bin/memcached', '-l', '127.0.0.1',
                           '-p', str(PORTS['memcached']), '-U', '0',
                           '-m', '64', '-u', getpass.getuser()], {}),
            'mariadb': (['/usr/sbin/mariadbd',
                         '--defaults-file=%s' % os.path.join(
                             self.etc, 'mariadb', 'my.cnf')], {}),
            'rabbitmq': (['/usr/lib/rabbitmq/bin/rabbitmq-server'], {
                'HOME': rabbit, 'RABBITMQ_NODENAME': 'rabbit@localhost',
                'RABBITMQ_NODE_IP_ADDRESS': '127.0.0.1',
                'RABBITMQ_NODE_PORT': str(PORTS['rabbitmq']),
                'ERL_EPMD_ADDRESS': '127.0.0.1',
                'RABBITMQ_MNESIA_BASE': os.path.join(rabbit, 'mnesia'),
                'RABBITMQ_LOG_BASE': os.path.join(self.logs, 'rabbitmq'),
                'RABBITMQ_PID_FILE': os.path.join(rabbit, 'rabbit.pid'),
                'RABBITMQ_ENABLED_PLUGINS_FILE': os.path.join(
                    rabbit, 'enabled_plugins'),
                'RABBITMQ_CONFIG_FILE': os.path.join(rabbit, 'rabbitmq'),
                'RABBITMQ_DIST_PORT': '25672'}),
            'virtlogd': (['/usr/sbin/virtlogd'], {}),
            'libvirtd': (['/usr/sbin/libvirtd'], {}),
            'keystone': (api('keystone', 'wsgi_keystone'), {
                'OS_KEYSTONE_CONFIG_DIR': os.path.join(self.etc,
                                                       'keystone')}),
            'glance': (api('glance', 'wsgi_glance'), {
                'OS_GLANCE_CONFIG_DIR': os.path.join(self.etc, 'glance')}),
            'placement': (api('placement', 'wsgi_placement'), {
                'OS_PLACEMENT_CONFIG_DIR': os.path.join(self.etc,
                                                        'placement')}),
            'network': (api('network', 'network_standin'), {}),
            'nova-api': (api('nova-api', 'wsgi_nova'), {
                'OS_NOVA_CONFIG_DIR': os.path.join(self.etc, 'nova')}),
            'nova-conductor': (daemon('nova-conductor', 'nova'), {}),
            'nova-scheduler': (daemon('nova-scheduler', 'nova'), {}),
            'nova-compute': (daemon('nova-compute', 'nova'), {}),
            # One worker per CPU (up to 4: MariaDB's connections), as
            # Cinder's own osapi_volume_workers: a set begins every drive's
            # snapshot at once, and one process (one GIL) takes their
            # requests one after the other.
            'cinder-api': (api('cinder-api', 'wsgi_cinder',
                               workers=min(os.cpu_count() or 1, 4)), {
                'MINICLOUD_CINDER_CONF': self.conf('cinder')}),
            'cinder-scheduler': (daemon('cinder-scheduler', 'cinder'), {}),
            'cinder-volume': (daemon('cinder-volume', 'cinder'),
                              {'PYTHONPATH': cinder_path}),
            'agent': ([self.bin('snapshot-dashboard-agent'), '--config-file',
                       self.conf('agent')], {}),
            # The REST API and a worker executing what it queues, on one
            # database (snapshot_dashboard_settings.py).
            'snapshot-api': (gunicorn + [
                '--bind', '127.0.0.1:%d' % PORTS['snapshot-api'],
                'snapshot_dashboard.restapi.wsgi:application'], dict(
                    self.django_env(), SNAPSHOT_DASHBOARD_API_CONFIG=(
                        self.conf('snapshot-api')))),
            'snapshot-worker': ([self.bin('snapshot-dashboard-worker'),
                                 '--poll', '0.5'], self.django_env()),
        }

    def django_env(self):
        """The environment of the REST API, its worker and their
        migrations: the Django settings the mini-cloud writes."""
        return {'DJANGO_SETTINGS_MODULE': 'snapshot_dashboard_settings',
                'PYTHONPATH': os.path.join(self.etc, 'snapshot-dashboard')}

    def pid_of(self, name):
        path = os.path.join(self.pids, name + '.pid')
        try:
            with open(path) as f:
                pid = int(f.read())
            if os.path.getmtime(path) < boot_time():
                return None  # written before a reboot: another process now
        except (OSError, ValueError):
            return None
        return pid if alive(pid) else None

    def start(self, name):
        if self.pid_of(name):
            return
        command, env = self.services()[name]
        os.makedirs(self.pids, exist_ok=True)
        os.makedirs(self.logs, exist_ok=True)
        with open(os.path.join(self.logs, name + '.log'), 'ab') as out:
            process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
                env=dict(os.environ, **env))
        with open(os.path.join(self.pids, name + '.pid'), 'w') as f:
            f.write(str(process.pid))

    @staticmethod
    def stop_pids(pids, grace_s=20):
        """SIGTERM to all at once, SIGKILL to what still runs after grace."""
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace_s
        while any(map(alive, pids)) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in filter(alive, pids):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def helper_pids(self):
        """Processes our services left behind under PID 1: privsep helpers
        (started with our config files) and epmd."""
        found = []
        for entry in os.listdir('/proc'):
            if not entry.isdigit():
                continue
            try:
                with open('/proc/%s/cmdline' % entry, 'rb') as f:
                    cmdline = f.read().decode(errors='replace').split('\0')
            except OSError:
                continue
            joined = ' '.join(cmdline)
            if ('privsep-helper' in joined and self.etc in joined) or (
                    os.path.basename(cmdline[0]) == 'epmd'):
                found.append(int(entry))
        return found

    # -- waiting --------------------------------------------------------------

    @staticmethod
    def wait_for(what, check, timeout_s=180, interval_s=0.5):
        deadline = time.monotonic() + timeout_s
        last = None
        while time.monotonic() < deadline:
            try:
                result = check()
                if result:
                    return result
            except Exception as e:  # noqa: BLE001 - retried until timeout
                last = e
            time.sleep(interval_s)
        raise RuntimeError('timed out waiting for %s (%s)' % (what, last))

    def answers(self, service, path='/'):
        try:
            with urllib.request.urlopen(self.url(service, path), timeout=5):
                return True
        except urllib.error.HTTPError:
            return True  # 401/300 is an answer
        except OSError:
            return False

    # -- configuration --------------------------------------------------------

    def configure(self):
        log('writing configuration')
        for folder in ['mariadb', 'rabbitmq/mnesia', 'glance/images',
                       'nova/instances', 'cinder/volumes', 'keystone',
                       'locks']:
            os.makedirs(os.path.join(self.data, folder), exist_ok=True)
        os.makedirs(os.path.join(self.logs, 'rabbitmq'), exist_ok=True)
        with open(self._mkdir_file('mariadb', 'my.cnf'), 'w') as f:
            f.write('[mysqld]\ndatadir=%s\nsocket=%s\nport=%d\n'
                    'bind-address=127.0.0.1\nuser=root\npid-file=%s\n'
                    'log-error=%s\nmax_connections=500\nskip-name-resolve\n'
                    'innodb_flush_log_at_trx_commit=2\n' % (
                        os.path.join(self.data, 'mariadb'),
                        os.path.join(self.data, 'mariadb.sock'),
                        PORTS['mariadb'],
                        os.path.join(self.data, 'mariadb.pid'),
                        os.path.join(self.logs, 'mariadb-error.log')))
        rabbit = os.path.join(self.data, 'rabbitmq')
        with open(os.path.join(rabbit, 'enabled_plugins'), 'w') as f:
            f.write('[].\n')
        with open(os.path.join(rabbit, 'rabbitmq.conf'), 'w') as f:
            f.write('loopback_users.guest = true\n')

        self.write_ini(self.conf('keystone'), {
            'DEFAULT': {'log_file': os.path.join(self.logs,
                                                 'keystone-app.log')},
            'database': self.database('keystone'),
            'token': {'provider': 'fernet'},
            'fernet_tokens': {'key_repository': os.path.join(
                self.data, 'keystone', 'fernet-keys')},
            'credential': {'key_repository': os.path.join(
                self.data, 'keystone', 'credential-keys')},
        })
        self.write_ini(os.path.join(self.etc, 'glance', 'glance-api.conf'), {
            'DEFAULT': {'enabled_backends': 'file:file',
                        'bind_host': '127.0.0.1',
                        'log_file': os.path.join(self.logs,
                                                 'glance-app.log')},
            'database': self.database('glance'),
            'keystone_authtoken': self.authtoken('glance'),
            'paste_deploy': {'flavor': 'keystone'},
            'glance_store': {'default_backend': 'file'},
            'file': {'filesystem_store_datadir': os.path.join(
                self.data, 'glance', 'images')},
            'os_glance_staging_store': {'filesystem_store_datadir':
                                        os.path.join(self.data, 'glance',
                                                     'staging')},
            'os_glance_tasks_store': {'filesystem_store_datadir':
                                      os.path.join(self.data, 'glance',
                                                   'tasks')},
        })
        shutil.copy(os.path.join(self.venv, 'etc', 'glance',
                                 'glance-api-paste.ini'),
                    os.path.join(self.etc, 'glance'))
        self.write_ini(self.conf('placement'), {
            'DEFAULT': {'log_file': os.path.join(self.logs,
                                                 'placement-app.log')},
            'placement_database': self.database('placement'),
            'api': {'auth_strategy': 'keystone'},
            'keystone_authtoken': self.authtoken('placement'),
        })
        privsep = '%s --config-file %s' % (self.bin('privsep-helper'),
                                           self.conf('nova'))
        self.write_ini(self.conf('nova'), {
            'DEFAULT': {
                'host': HOST, 'my_ip': '127.0.0.1',
                'transport_url': self.transport_url,
                'compute_driver': 'libvirt.LibvirtDriver',
                'state_path': os.path.join(self.data, 'nova'),
                'instances_path': os.path.join(self.data, 'nova',
                                               'instances'),
                'osapi_compute_listen': '127.0.0.1',
                'log_dir': self.logs, 'use_stderr': 'false',
                'initial_cpu_allocation_ratio': 16.0,
                'initial_ram_allocation_ratio': 4.0,
                'instance_usage_audit': 'false',
                'heal_instance_info_cache_interval': -1,
                'resume_guests_state_on_host_boot': 'true',
                'default_ephemeral_format': 'ext4',
            },
            'api': {'auth_strategy': 'keystone'},
            'wsgi': {'api_paste_config': os.path.join(self.etc, 'nova',
                                                      'api-paste.ini')},
            'api_database': self.database('nova_api'),
            'database': self.database('nova'),
            'keystone_authtoken': self.authtoken('nova'),
            'placement': self.auth_section('placement'),
            'neutron': dict(self.auth_section('nova'),
                            endpoint_override=self.url('network')),
            'cinder': dict(self.auth_section('nova'),
                           os_region_name=REGION),
            'glance': {'region_name': REGION},
            'service_user': dict(self.auth_section('nova'),
                                 send_service_user_token='true'),
            'libvirt': {'virt_type': 'qemu', 'cpu_mode': 'none',
                        'live_migration_scheme': 'tcp'},
            'scheduler': {'discover_hosts_in_cells_interval': -1},
            'filter_scheduler': {'enabled_filters': 'ComputeFilter'},
            'workarounds': {'disable_rootwrap': 'true'},
            'nova_sys_admin': {'helper_command': privsep},
            'privsep_osbrick': {'helper_command': privsep},
            'vif_plug_ovs_privileged': {'helper_command': privsep},
            'vif_plug_linux_bridge_privileged': {'helper_command': privsep},
            'oslo_concurrency': {'lock_path': os.path.join(self.data,
                                                           'locks')},
            'vnc': {'enabled': 'false'},
            'spice': {'enabled': 'false'},
            'serial_console': {'enabled': 'false'},
            'oslo_messaging_notifications': {'driver': 'noop'},
            'os_vif_ovs': {'ovsdb_connection': ''},
        })
        shutil.copy(os.path.join(self.venv, 'etc', 'nova', 'api-paste.ini'),
                    os.path.join(self.etc, 'nova'))
        os.makedirs(os.path.join(self.etc, 'cinder'), exist_ok=True)
        shutil.copy(os.path.join(self.venv, 'etc', 'cinder',
                                 'resource_filters.json'),
                    os.path.join(self.etc, 'cinder'))
        self.write_ini(self.conf('agent'), {
            'DEFAULT': {'log_file': os.path.join(self.logs, 'agent.log')},
            'agent': {'bind_host': '127.0.0.1',
                      'bind_port': PORTS['agent'],
                      'state_dir': os.path.join(self.data, 'agent'),
                      'capture_dir': os.path.join(self.data, 'agent',
                                                  'captures')},
            'libvirt': {'connection_uri': 'qemu:///system'},
            'keystone_authtoken': self.authtoken(PLUGIN_USER),
        })
        self.write_ini(self.conf('snapshot-api'), {
            'DEFAULT': {'log_file': os.path.join(self.logs,
                                                 'snapshot-api-app.log')},
            'api': {'bind_host': '127.0.0.1',
                    'bind_port': PORTS['snapshot-api'],
                    'region_name': REGION},
            'keystone_authtoken': self.authtoken(PLUGIN_USER),
        })
        self.write_snapshot_settings()
        cinder_privsep = '%s --config-file %s' % (self.bin('privsep-helper'),
                                                  self.conf('cinder'))
        self.write_ini(self.conf('cinder'), {
            'DEFAULT': {
                'host': HOST, 'my_ip': '127.0.0.1',
                'transport_url': self.transport_url,
                'auth_strategy': 'keystone',
                'enabled_backends': 'loop',
                'default_volume_type': 'loop',
                'state_path': os.path.join(self.data, 'cinder'),
                'api_paste_config': os.path.join(self.venv, 'etc', 'cinder',
                                                 'api-paste.ini'),
                'osapi_volume_listen': '127.0.0.1',
                'log_dir': self.logs, 'use_stderr': 'false',
                'glance_api_servers': self.url('glance'),
                'resource_query_filters_file': os.path.join(
                    self.etc, 'cinder', 'resource_filters.json'),
                'image_conversion_dir': os.path.join(self.data, 'cinder',
                                                     'conversion'),
            },
            'database': self.database('cinder'),
            'keystone_authtoken': self.authtoken('cinder'),
            'nova': self.auth_section('cinder'),
            'service_user': dict(self.auth_section('cinder'),
                                 send_service_user_token='true'),
            'loop': {'volume_driver': 'minicloud_cinder.LoopDriver',
                     'volume_backend_name': 'loop',
                     'loop_dir': os.path.join(self.data, 'cinder',
                                              'volumes'),
                     'loop_snapshot_latency_s': os.environ.get(
                         'MINICLOUD_SNAPSHOT_LATENCY_S', '0')},
            'oslo_concurrency': {'lock_path': os.path.join(self.data,
                                                           'locks')},
            'cinder_sys_admin': {'helper_command': cinder_privsep},
            'privsep_osbrick': {'helper_command': cinder_privsep},
            'coordination': {'backend_url': 'file://%s' % os.path.join(
                self.data, 'locks')},
            'oslo_messaging_notifications': {'driver': 'noop'},
        })

    @property
    def snapshot_settings_file(self):
        return os.path.join(self.etc, 'snapshot-dashboard',
                            'snapshot_dashboard_settings.py')

    def snapshot_settings(self):
        """The Django settings of the REST API and its worker, as the text
        of their module: their database, the service user, the agent."""
        s = self.secrets
        service = self.auth_section(PLUGIN_USER)
        settings = {
            'SECRET_KEY': s['django'],
            'INSTALLED_APPS': ['snapshot_dashboard.apps.'
                               'SnapshotDashboardConfig'],
            'USE_TZ': True,
            'TIME_ZONE': 'UTC',
            'DATABASES': {'default': {
                'ENGINE': 'django.db.backends.mysql',
                'NAME': SNAPSHOT_DATABASE, 'USER': SNAPSHOT_DB_USER,
                'PASSWORD': s['snapshot-db'], 'HOST': '127.0.0.1',
                'PORT': PORTS['mariadb'],
                # Long-running processes keep a connection, checked before
                # it is reused after a request or a worker's round.
                'CONN_MAX_AGE': 600, 'CONN_HEALTH_CHECKS': True,
                # Django's advice for MySQL; UTC so that the database's
                # NOW() (heartbeats) reads as the UTC Django writes.
                'OPTIONS': {'charset': 'utf8mb4',
                            'isolation_level': 'read committed',
                            'init_command': "SET time_zone = '+00:00'"}}},
            'SNAPSHOT_DASHBOARD_SERVICE_AUTH': {
                key: service[key] for key in (
                    'auth_url', 'username', 'password', 'project_name',
                    'user_domain_name', 'project_domain_name')},
            'SNAPSHOT_DASHBOARD_AGENT_URL': self.url('agent'),
            # Schedules made in the demo may fire every minute.
            'SNAPSHOT_DASHBOARD_MIN_SCHEDULE_INTERVAL_S': 60,
        }
        return ('# Written by tools/minicloud: the Django settings of '
                'snapshot-dashboard-api\n# and its worker.\n' + ''.join(
                    '%s = %r\n' % item for item in settings.items()))

    def snapshot_settings_current(self):
        try:
            with open(self.snapshot_settings_file) as f:
                return f.read() == self.snapshot_settings()
        except OSError:
            return False

    def write_snapshot_settings(self):
        """Readable by root only: they hold passwords."""
        os.makedirs(os.path.dirname(self.snapshot_settings_file),
                    exist_ok=True)
        descriptor = os.open(self.snapshot_settings_file,
                             os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, 'w') as f:
            f.write(self.snapshot_settings())

    def create_snapshot_database(self):
        """The database of the REST API and its worker, and their user, who
        may also create and drop throwaway test databases
        (``test_snapshot_dashboard*``). Every ``up``: a cloud from before
        gets them, and the password follows the secrets file."""
        user = "'%s'@'127.0.0.1'" % SNAPSHOT_DB_USER
        self.mariadb_root(
            'CREATE DATABASE IF NOT EXISTS %s CHARACTER SET utf8mb4 '
            'COLLATE utf8mb4_unicode_ci;' % SNAPSHOT_DATABASE
            + "CREATE USER IF NOT EXISTS %s IDENTIFIED BY '%s';" % (
                user, self.secrets['snapshot-db'])
            + "ALTER USER %s IDENTIFIED BY '%s';" % (
                user, self.secrets['snapshot-db'])
            + 'GRANT ALL ON %s.* TO %s;' % (SNAPSHOT_DATABASE, user)
            + 'GRANT ALL ON `test\\_%s%%`.* TO %s;' % (
                SNAPSHOT_DATABASE.replace('_', '\\_'), user))

    def mariadb_root(self, sql):
        """Run ``sql`` as MariaDB's root through its socket, once it
        answers; the SQL goes through standard input, so its passwords show
        neither in ps nor in an error."""
        command = ['mariadb', '--socket=%s' % os.path.join(
            self.data, 'mariadb.sock'), '-uroot']
        self.wait_for('MariaDB', lambda: self.run(
            *command, '-e', 'SELECT 1') is not None)
        self.run(*command, input=sql)

    def migrate_snapshot_database(self):
        self.run(self.bin('python'), '-m', 'django', 'migrate',
                 '--verbosity', '0', env=self.django_env())

    def _mkdir_file(self, folder, name):
        os.makedirs(os.path.join(self.etc, folder), exist_ok=True)
        return os.path.join(self.etc, folder, name)

    # -- first start: databases, identity, cells ------------------------------

    def initialize(self):
        s = self.secrets
        mysql_data = os.path.join(self.data, 'mariadb')
        if not os.listdir(mysql_data):
            log('initialising MariaDB')
            self.run('mariadb-install-db', '--datadir=%s' % mysql_data,
                     '--user=root', '--auth-root-authentication-method=normal',
                     '--skip-test-db')
        self.start('mariadb')
        sql = ''.join('CREATE DATABASE IF NOT EXISTS %s;' % d
                      for d in DATABASES)
        sql += ("CREATE USER IF NOT EXISTS 'openstack'@'127.0.0.1' "
                "IDENTIFIED BY '%s';" % s['db'])
        sql += "GRANT ALL ON *.* TO 'openstack'@'127.0.0.1';"
        self.mariadb_root(sql)

        log('syncing databases')
        keystone = [self.bin('keystone-manage'), '--config-file',
                    self.conf('keystone')]
        self.run(*keystone, 'db_sync')
        for setup in ('fernet_setup', 'credential_setup'):
            self.run(*keystone, setup, '--keystone-user', 'root',
                     '--keystone-group', 'root')
        self.run(*keystone, 'bootstrap', '--bootstrap-password', s['admin'],
                 '--bootstrap-admin-url', self.url('keystone', '/v3'),
                 '--bootstrap-public-url', self.url('keystone', '/v3'),
                 '--bootstrap-internal-url', self.url('keystone', '/v3'),
                 '--bootstrap-region-id', REGION)
        self.run(self.bin('glance-manage'), '--config-dir',
                 os.path.join(self.etc, 'glance'), 'db_sync')
        self.run(self.bin('placement-manage'), '--config-file',
                 self.conf('placement'), 'db', 'sync')
        nova = [self.bin('nova-manage'), '--config-file', self.conf('nova')]
        self.run(*nova, 'api_db', 'sync')
        self.run(*nova, 'cell_v2', 'map_cell0', '--database_connection',
                 self.db_url('nova_cell0'))
        if ' cell1 ' not in self.run(*nova, 'cell_v2', 'list_cells'):
            self.run(*nova, 'cell_v2', 'create_cell', '--name', 'cell1',
                     '--transport-url', self.transport_url,
                     '--database_connection', self.db_url('nova'))
        self.run(*nova, 'db', 'sync')
        self.run(self.bin('cinder-manage'), '--config-file',
                 self.conf('cinder'), 'db', 'sync')

    def openstack(self, cloud, *args):
        return self.run(self.bin('openstack'), '--os-cloud', cloud, *args,
                        env={'OS_CLIENT_CONFIG_FILE': self.clouds_yaml})

    def openstack_json(self, cloud, *args):
        return json.loads(self.openstack(cloud, *args, '-f', 'json'))

    @property
    def clouds_yaml(self):
        return os.path.join(self.state, 'clouds.yaml')

    def write_clouds_yaml(self):
        s = self.secrets

        def cloud(user, project, password):
            return {'auth': {'auth_url': self.url('keystone', '/v3'),
                             'username': user, 'password': password,
                             'project_name': project,
                             'user_domain_name': 'Default',
                             'project_domain_name': 'Default'},
                    'region_name': REGION, 'identity_api_version': 3,
                    'interface': 'public'}

        clouds = {'clouds': {
            'minicloud-admin': cloud('admin', 'admin', s['admin']),
            'minicloud-demo': cloud('demo', 'demo', s['demo']),
            'minicloud-demo2': cloud('demo2', 'demo2', s['demo2']),
            'minicloud-demo-reader': cloud(DEMO_READER, 'demo',
                                           s[DEMO_READER]),
            'minicloud-service': cloud(PLUGIN_USER, 'service',
                                       s[PLUGIN_USER]),
        }}
        # JSON is YAML; no YAML writer is needed for this file.
        with open(self.clouds_yaml, 'w') as f:
            json.dump(clouds, f, indent=2)
        os.chmod(self.clouds_yaml, 0o600)

    def connection(self, cloud):
        import openstack.config
        import openstack.connection
        config = openstack.config.OpenStackConfig(
            config_files=[self.clouds_yaml]).get_one(cloud)
        return openstack.connection.Connection(config=config)

    def register_identity(self):
        log('registering users, services and endpoints')
        s = self.secrets
        identity = self.connection('minicloud-admin').identity

        def project(name):
            return (identity.find_project(name, domain_id='default')
                    or identity.create_project(name=name,
                                               domain_id='default'))

        def user(name):
            return (identity.find_user(name, domain_id='default')
                    or identity.create_user(name=name, password=s[name],
                                            domain_id='default'))

        roles = {name: identity.find_role(name)
                 or identity.create_role(name=name)
                 for name in ('admin', 'service', 'member', 'reader')}
        service = project('service')
        for name in SERVICE_USERS + [PLUGIN_USER]:
            account = user(name)
            for role in ('admin', 'service'):
                identity.assign_project_role_to_user(service, account,
                                                     roles[role])
        for name in ('demo', 'demo2'):
            identity.assign_project_role_to_user(project(name), user(name),
                                                 roles['member'])
        identity.assign_project_role_to_user(
            project('demo'), user(DEMO_READER), roles['reader'])
        catalog = [('glance', 'image', 'glance', ''),
                   ('placement', 'placement', 'placement', ''),
                   ('nova', 'compute', 'nova-api', '/v2.1'),
                   ('cinderv3', 'block-storage', 'cinder-api',
                    '/v3/%(project_id)s'),
                   ('neutron', 'network', 'network', ''),
                   ('snapshot-dashboard', SNAPSHOT_SERVICE_TYPE,
                    'snapshot-api', '')]
        existing = {svc.name for svc in identity.services()}
        for name, kind, port, path in catalog:
            if name in existing:
                continue
            created = identity.create_service(name=name, type=kind)
            for interface in ('public', 'internal', 'admin'):
                identity.create_endpoint(service_id=created.id,
                                         interface=interface,
                                         url=self.url(port, path),
                                         region_id=REGION)

    # -- up, down, status -----------------------------------------------------

    @property
    def initialized_marker(self):
        return os.path.join(self.state, 'initialized')

    QEMU_CONF = '/etc/libvirt/qemu.conf'
    QEMU_CONF_BLOCK = (
        '\n# snapshot_dashboard mini-cloud: guests run as root, so their '
        'files may\n# live anywhere (the state folder can be under a private '
        'directory).\nuser = "root"\ngroup = "root"\n')

    def host_preparation(self):
        for folder in ('/run/libvirt', '/var/log/libvirt',
                       '/var/lib/libvirt/qemu'):
            os.makedirs(folder, exist_ok=True)
        with open(self.QEMU_CONF) as f:
            current = f.read()
        if self.QEMU_CONF_BLOCK not in current:
            with open(self.QEMU_CONF, 'a') as f:
                f.write(self.QEMU_CONF_BLOCK)

    def up(self):
        started = time.monotonic()
        # Settings from before a change (a cloud whose runs were in SQLite)
        # are rewritten, and the API and worker restarted on them.
        settings_current = self.snapshot_settings_current()
        if (self.running() and os.path.exists(self.initialized_marker)
                and settings_current):
            log('already running')
            print(self.clouds_yaml)
            return
        fresh = not os.path.exists(self.initialized_marker)
        self.host_preparation()
        self.configure()
        self.write_clouds_yaml()
        if fresh:
            self.initialize()
        self.start('mariadb')
        for name in ('memcached', 'rabbitmq', 'virtlogd', 'libvirtd',
                     'keystone'):
            self.start(name)
        self.wait_for('libvirtd', lambda: subprocess.run(
            ['virsh', '-c', 'qemu:///system', 'version'],
            capture_output=True, check=False).returncode == 0)
        self.forget_stale_guests()
        self.wait_for('keystone', lambda: self.answers('keystone', '/v3'))
        # The RPC services retry a refused connection only every 30 s.
        self.wait_for('RabbitMQ', lambda: self.run(
            '/usr/lib/rabbitmq/bin/rabbitmqctl', '-n', 'rabbit@localhost',
            'await_startup', env=self.services()['rabbitmq'][1]) is not None,
            timeout_s=120)
        # Every time: a state folder from before a user or service was
        # added gets it (each step finds what exists).
        self.register_identity()
        self.create_snapshot_database()
        self.migrate_snapshot_database()
        if not settings_current:
            self.stop_pids(sorted(descendants([
                pid for pid in map(self.pid_of, ('snapshot-api',
                                                 'snapshot-worker'))
                if pid])))
        for name in self.services():
            self.start(name)
        for service in ('glance', 'placement', 'nova-api', 'cinder-api',
                        'network', 'agent', 'snapshot-api'):
            self.wait_for(service, lambda svc=service: self.answers(svc))
        self.wait_for('the compute service', self.compute_is_up,
                      timeout_s=240)
        self.wait_for('the volume service', self.volume_is_up,
                      timeout_s=180)
        if fresh:
            self.seed()
            with open(self.initialized_marker, 'w') as f:
                f.write(time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()))
        log('up in %.0f s (%s)' % (time.monotonic() - started,
                                   'fresh' if fresh else 'warm'))
        print(self.clouds_yaml)

    def compute_is_up(self):
        services = self.openstack_json('minicloud-admin', 'compute',
                                       'service', 'list')
        if not any(s['Binary'] == 'nova-compute' and s['State'] == 'up'
                   for s in services):
            return False
        # Map the compute host into cell1 as soon as its provider exists,
        # rather than waiting for the periodic discovery.
        self.run(self.bin('nova-manage'), '--config-file',
                 self.conf('nova'), 'cell_v2', 'discover_hosts')
        return bool(self.openstack_json('minicloud-admin', 'hypervisor',
                                        'list'))

    def volume_is_up(self):
        pools = self.openstack_json('minicloud-admin', 'volume', 'service',
                                    'list')
        return any(s['Binary'] == 'cinder-volume' and s['State'] == 'up'
                   for s in pools) and self.scheduler_sees_pool()

    def scheduler_sees_pool(self):
        out = self.run(self.bin('cinder'), '--os-volume-api-version', '3.66',
                       'get-pools', env=self.cinder_env('minicloud-admin'))
        return 'loop' in out

    def cinder_env(self, cloud):
        with open(self.clouds_yaml) as f:
            auth = json.load(f)['clouds'][cloud]['auth']
        return {'OS_AUTH_URL': auth['auth_url'],
                'OS_USERNAME': auth['username'],
                'OS_PASSWORD': auth['password'],
                'OS_PROJECT_NAME': auth['project_name'],
                'OS_USER_DOMAIN_NAME': 'Default',
                'OS_PROJECT_DOMAIN_NAME': 'Default'}

    def running(self):
        return all(self.pid_of(name) for name in self.services())

    def down(self):
        # nova-compute first: it would record the guests' stop as the
        # users' own and mark their servers SHUTOFF.
        pid = self.pid_of('nova-compute')
        if pid:
            log('stopping nova-compute (%d)' % pid)
            self.stop_pids([pid], grace_s=10)
        for domain in self.guest_domains():
            subprocess.run(['virsh', '-c', 'qemu:///system', 'destroy',
                            domain], capture_output=True, check=False)
        running = {name: self.pid_of(name) for name in self.services()}
        running = {name: pid for name, pid in running.items() if pid}
        if running:
            log('stopping %s' % ', '.join(running))
        # Their workers too (cinder-volume forks one, gunicorn its worker):
        # a parent killed after the grace period would orphan them.
        self.stop_pids(sorted(descendants(
            list(running.values()) + self.helper_pids())))
        log('down')

    def forget_stale_guests(self):
        """Nova's compute refuses to start beside the instances of a cloud
        whose state was wiped (or of another checkout's cloud): libvirt still
        defines them under the same names. A domain is this cloud's when its
        UUID has a folder in this cloud's instances path."""
        instances = os.path.join(self.data, 'nova', 'instances')
        ours = set(os.listdir(instances) if os.path.isdir(instances)
                   else ())
        listed = subprocess.run(
            ['virsh', '-c', 'qemu:///system', 'list', '--all', '--uuid'],
            capture_output=True, text=True, check=False).stdout.split()
        for uuid in listed:
            if uuid in ours:
                continue
            name = subprocess.run(
                ['virsh', '-c', 'qemu:///system', 'domname', uuid],
                capture_output=True, text=True, check=False).stdout.strip()
            if not name.startswith('instance-'):
                continue
            log('forgetting %s (%s) of another mini-cloud' % (name, uuid))
            for action in ('destroy', 'undefine'):
                subprocess.run(['virsh', '-c', 'qemu:///system', action,
                                uuid], capture_output=True, check=False)

    def guest_domains(self):
        if not self.pid_of('libvirtd'):
            return []
        result = subprocess.run(['virsh', '-c', 'qemu:///system', 'list',
                                 '--name'], capture_output=True, text=True,
                                check=False)
        return [d for d in result.stdout.split() if d]

    def status(self):
        ok = True
        for name in self.services():
            pid = self.pid_of(name)
            ok = ok and bool(pid)
            print('%-17s %s' % (name, 'running (%d)' % pid if pid
                                else 'stopped'))
        for domain in self.guest_domains():
            print('%-17s running' % ('guest ' + domain))
        return 0 if ok else 1

    # -- seed -----------------------------------------------------------------

    def seed(self):
        log('seeding images, flavor and demo servers')
        guest = self.run(os.path.join(REPO, 'tools', 'guest', 'build'),
                         os.path.join(self.state, 'guest')).strip()
        admin = 'minicloud-admin'
        kernel = self.openstack_json(
            admin, 'image', 'create', '--public', '--disk-format', 'aki',
            '--container-format', 'aki', '--file',
            os.path.join(guest, 'vmlinuz'), GUEST_IMAGE + '-kernel')['id']
        ramdisk = self.openstack_json(
            admin, 'image', 'create', '--public', '--disk-format', 'ari',
            '--container-format', 'ari', '--file',
            os.path.join(guest, 'initrd.img'), GUEST_IMAGE + '-ramdisk')['id']
        self.openstack(
            admin, 'image', 'create', '--public', '--disk-format', 'ami',
            '--container-format', 'ami', '--file',
            os.path.join(guest, 'root.img'),
            '--property', 'kernel_id=%s' % kernel,
            '--property', 'ramdisk_id=%s' % ramdisk,
            '--property', 'hw_qemu_guest_agent=yes',
            '--property', 'os_type=linux',
            '--property', 'os_command_line=console=ttyS0',
            # The test guest does not act on ACPI's power button: a clean
            # stop would wait Nova's shutdown_timeout (60 s) for nothing.
            '--property', 'os_shutdown_timeout=2', GUEST_IMAGE)
        self.openstack(admin, 'flavor', 'create', '--public', '--ram', '256',
                       '--disk', '1', '--ephemeral', '1', '--vcpus', '1',
                       FLAVOR)
        self.openstack(admin, 'flavor', 'create', '--public', '--ram', '256',
                       '--disk', '1', '--vcpus', '1', FLAVOR + '-noeph')
        self.openstack(admin, 'volume', 'type', 'create', '--public',
                       '--property', 'volume_backend_name=loop', 'loop')
        self.seed_servers()

    def create_volume(self, cloud, name, **kwargs):
        volume = self.openstack_json(cloud, 'volume', 'create', '--size',
                                     '1', name)
        self.wait_for('volume %s' % name, lambda: self.openstack_json(
            cloud, 'volume', 'show', volume['id'])['status'] == 'available')
        return volume['id']

    def attach(self, cloud, server, volume_id):
        self.openstack(cloud, 'server', 'add', 'volume', server, volume_id)
        self.wait_for('attaching %s' % volume_id, lambda: self.openstack_json(
            cloud, 'volume', 'show', volume_id)['status'] == 'in-use')

    def seed_servers(self):
        """As the demo user: an image-backed server with two volumes and a
        volume-backed server with one more, all running the guest."""
        demo = 'minicloud-demo'
        compute = ['--os-compute-api-version', '2.79']
        self.openstack(demo, *compute, 'server', 'create', '--flavor', FLAVOR,
                       '--image', GUEST_IMAGE, '--nic', 'none', '--wait',
                       'demo-image')
        for n in (1, 2):
            self.attach(demo, 'demo-image', self.create_volume(
                demo, 'demo-image-data%d' % n))
        self.openstack(demo, *compute, 'server', 'create', '--flavor',
                       FLAVOR + '-noeph', '--image', GUEST_IMAGE,
                       '--boot-from-volume', '1', '--nic', 'none', '--wait',
                       'demo-volume')
        self.attach(demo, 'demo-volume', self.create_volume(
            demo, 'demo-volume-data'))


def main():
    parser = argparse.ArgumentParser(prog='minicloud')
    parser.add_argument('--state', default=os.path.join(REPO, '.state',
                                                        'minicloud'))
    parser.add_argument('action', choices=['up', 'down', 'status'])
    args = parser.parse_args()
    cloud = MiniCloud(args.state)
    if args.action == 'up':
        cloud.up()
    elif args.action == 'down':
        cloud.down()
    else:
        sys.exit(cloud.status())


if __name__ == '__main__':
    main()
