"""A one-node Slurm cluster for tests, started by hand (no systemd) from a private folder.

munged, MariaDB, slurmdbd, slurmctld and slurmd run in the foreground as children of this
process, each from its own configuration under ``root`` with its own ports, so that a
Slurm already on the machine is not touched (the Slurm commands find this cluster through
``SLURM_CONF``, :meth:`OneNodeCluster.env`). munged serves munge's default socket (Slurm
22.05's clients use it to reach slurmdbd whatever ``AuthInfo`` says); one already serving
it is used instead. :meth:`OneNodeCluster.stop` cancels the cluster's jobs and ends exactly
the daemons :meth:`start` started, by PID.

Accounting (slurmdbd with MariaDB) is on, as on real clusters: snakemake-executor-plugin-
slurm validates the account with sacctmgr and reads sacct wherever it exists.

Facts this follows (Debian 12, Slurm 22.05.8, measured 2026-12-06): cgroups are not
available in containers, hence ``proctrack/linuxproc`` and ``task/none``; jobs print a
harmless "cluster configuration lacks support for cpu binding".
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

#: Debian/Ubuntu packages of the cluster (Slurm 22.05 on Debian 12).
PACKAGES = ("slurm-wlm", "slurmdbd", "munge", "mariadb-server")
#: Programs the packages provide that the cluster runs.
PROGRAMS = (
    "munged",
    "mariadbd",
    "mariadb-install-db",
    "mariadb",
    "slurmdbd",
    "slurmctld",
    "slurmd",
    "sbatch",
    "squeue",
    "sacct",
    "sacctmgr",
    "scancel",
)
CLUSTER = "starclusters"
ACCOUNT = "starclusters"
#: Partitions: the CPU one (default) and the one the profile sends GPU rules to; both are
#: the one node, without GRES (the tiny config runs on the CPU).
PARTITIONS = ("cpu", "gpu")
#: Seconds a finished job stays visible to squeue; the plugin's squeue status path needs
#: at least 3 × its first status delay.
MIN_JOB_AGE_S = 300
MUNGE_KEY = Path("/etc/munge/munge.key")
#: munge's default socket: Slurm 22.05's clients reach slurmdbd through it whatever
#: AuthInfo says, so the cluster uses it (and a munged already serving it).
MUNGE_SOCKET = Path("/run/munge/munge.socket.2")
#: Where Slurm's commands look without SLURM_CONF. Inside a job the plugin's jobstep
#: executor drops every SLURM_* variable but the job's ids before it calls srun
#: (snakemake-executor-plugin-slurm#164), so srun must find the configuration here: the
#: cluster links its own here for its lifetime, unless a configuration is here already.
DEFAULT_CONF = Path("/etc/slurm/slurm.conf")
#: Prefix of the clusters' folders (tempfile.mkdtemp), to recognise a link left behind.
ROOT_PREFIX = "starclusters-cluster-"


def unsupported_reason() -> str | None:
    """Why this machine cannot host the test cluster, or None: root on Debian or Ubuntu
    with apt-get."""
    if os.name != "posix" or os.geteuid() != 0:
        return "needs root (installs Slurm with apt-get and starts its daemons)"
    try:
        release = Path("/etc/os-release").read_text()
    except OSError:
        return "no /etc/os-release: not a Debian or Ubuntu system"
    ids = {
        word.strip('"')
        for line in release.splitlines()
        if line.startswith(("ID=", "ID_LIKE="))
        for word in line.split("=", 1)[1].split()
    }
    if not ids & {"debian", "ubuntu"}:
        return f"not Debian or Ubuntu (os-release IDs {sorted(ids)})"
    if shutil.which("apt-get") is None:
        return "apt-get not found"
    if foreign_conf():
        return (
            f"{DEFAULT_CONF} exists (a Slurm configured on this machine): the test cluster "
            "needs that path for srun inside its jobs and leaves it alone"
        )
    return None


def foreign_conf() -> bool:
    """A Slurm configuration at DEFAULT_CONF that is not a test cluster's link."""
    if not DEFAULT_CONF.is_symlink():
        return DEFAULT_CONF.exists()
    return ROOT_PREFIX not in os.readlink(DEFAULT_CONF)


def missing_programs() -> list[str]:
    """The cluster's programs not on PATH (nor in /usr/sbin)."""
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin:/sbin"
    return [p for p in PROGRAMS if shutil.which(p, path=path) is None]


def install(log) -> None:
    """apt-get install the PACKAGES unless their programs are there. Their services are not
    started (a policy-rc.d that refuses, made for the install and removed after, unless one
    exists)."""
    if not missing_programs():
        log(f"Slurm packages present ({', '.join(PACKAGES)})")
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    policy = Path("/usr/sbin/policy-rc.d")
    made_policy = not policy.exists()
    if made_policy:
        policy.write_text(
            "#!/bin/sh\n# tests/slurm: start no services while installing\nexit 101\n"
        )
        policy.chmod(0o755)
    try:
        cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
        log("$ " + " ".join(cmd))
        if subprocess.run(cmd, env=env).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, check=True)
            subprocess.run(cmd, env=env, check=True)
    finally:
        if made_policy:
            policy.unlink()
    missing = missing_programs()
    if missing:
        raise RuntimeError(f"after installing {PACKAGES}: {missing} still missing")


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, check, timeout_s: float = 60.0, log_file: Path | None = None):
    """Poll ``check()`` every 0.5 s until it returns a true value; RuntimeError (with the tail
    of ``log_file``) after ``timeout_s``."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    tail = ""
    if log_file is not None and log_file.exists():
        tail = "\n" + "\n".join(log_file.read_text(errors="replace").splitlines()[-30:])
    raise RuntimeError(f"{what} not ready after {timeout_s:.0f} s{tail}")


class OneNodeCluster:
    """munged, MariaDB, slurmdbd, slurmctld and slurmd on this machine as one node with
    all its CPUs and 85 % of its memory; configuration, state and logs under ``root``."""

    def __init__(self, root: Path, log=print):
        self.root = Path(root)
        self.log = log
        self.node = socket.gethostname().split(".")[0]
        self.cpus = os.cpu_count() or 1
        with open("/proc/meminfo") as f:
            total_kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
        self.memory_mb = int(0.85 * total_kb / 1024)
        self.ports = {name: free_port() for name in ("slurmctld", "slurmd", "slurmdbd", "mariadb")}
        self.procs: dict[str, subprocess.Popen] = {}
        self.conf = self.root / "etc" / "slurm.conf"
        self.linked_conf = False
        self.made_munge_dir = False

    # --- the commands' environment

    def env(self, base: dict | None = None) -> dict:
        """``base`` (default: os.environ) with SLURM_CONF pointing at this cluster and the
        sbin folders on PATH."""
        env = dict(os.environ if base is None else base)
        env["SLURM_CONF"] = str(self.conf)
        env["PATH"] = env.get("PATH", "") + os.pathsep + "/usr/sbin:/sbin"
        for var in [v for v in env if v.startswith(("SLURM_", "SBATCH_", "SRUN_"))]:
            if var != "SLURM_CONF":
                del env[var]
        return env

    def run(
        self, *cmd: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess:
        """A Slurm (or MariaDB) command against this cluster; its output captured."""
        result = subprocess.run(
            cmd, env=self.env(), capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
            )
        return result

    # --- files

    def _write_files(self) -> None:
        for sub in ("etc", "state", "spool", "log", "run", "munge", "mysql"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        # munged (user munge) must reach its socket folder; nothing else is shared with it
        os.chmod(self.root, 0o755)
        shutil.chown(self.root / "munge", "munge", "munge")
        os.chmod(self.root / "munge", 0o755)
        r, p = self.root, self.ports
        auth = "AuthType=auth/munge\n"
        self.conf.write_text(
            f"""# one-node test cluster (tests/slurm/cluster.py)
ClusterName={CLUSTER}
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={p["slurmctld"]}
SlurmdPort={p["slurmd"]}
SlurmUser=root
SlurmdUser=root
{auth}StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/run/slurmctld.pid
SlurmdPidFile={r}/run/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig={r}/etc/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort={p["slurmdbd"]}
JobCompType=jobcomp/none
MinJobAge={MIN_JOB_AGE_S}
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} State=UNKNOWN
PartitionName={PARTITIONS[0]} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
PartitionName={PARTITIONS[1]} Nodes={self.node} MaxTime=INFINITE State=UP
"""
        )
        (r / "etc" / "plugstack.conf").write_text("")
        dbd = r / "etc" / "slurmdbd.conf"
        dbd.write_text(
            f"""{auth}DbdHost=localhost
DbdPort={p["slurmdbd"]}
SlurmUser=root
PidFile={r}/run/slurmdbd.pid
LogFile={r}/log/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={p["mariadb"]}
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
"""
        )
        os.chmod(dbd, 0o600)

    # --- daemons

    def _spawn(self, name: str, cmd: list[str], **kwargs) -> subprocess.Popen:
        out = open(self.root / "log" / f"{name}.out", "ab")  # noqa: SIM115 (daemon's life)
        proc = subprocess.Popen(
            cmd,
            env=self.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            **kwargs,
        )
        self.procs[name] = proc
        self.log(f"started {name} (PID {proc.pid})")
        return proc

    def _alive(self, name: str) -> bool:
        proc = self.procs[name]
        if proc.poll() is not None:
            log = self.root / "log" / f"{name}.out"
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"{name} exited ({proc.returncode}):\n{tail}")
        return True

    def _munge_works(self) -> bool:
        """A munged answers on MUNGE_SOCKET (a credential made and read back)."""
        if not MUNGE_SOCKET.exists():
            return False
        cred = subprocess.run(
            ["munge", "-n", f"--socket={MUNGE_SOCKET}"], capture_output=True, timeout=10
        )
        if cred.returncode != 0:
            return False
        back = subprocess.run(
            ["unmunge", f"--socket={MUNGE_SOCKET}"],
            input=cred.stdout,
            capture_output=True,
            timeout=10,
        )
        return back.returncode == 0

    def _listening(self, port: int) -> bool:
        with socket.socket() as s:
            s.settimeout(0.5)
            return s.connect_ex(("127.0.0.1", port)) == 0

    def start(self) -> float:
        """Write the configuration, start every daemon and register cluster, account and
        user; returns the seconds it took."""
        t0 = time.monotonic()
        if not MUNGE_KEY.exists():
            raise RuntimeError(f"{MUNGE_KEY} missing: the munge package makes it")
        self._write_files()
        if foreign_conf():
            raise RuntimeError(f"{DEFAULT_CONF} exists: not replacing another Slurm's config")
        DEFAULT_CONF.parent.mkdir(parents=True, exist_ok=True)
        DEFAULT_CONF.unlink(missing_ok=True)  # a link a killed test run left behind
        DEFAULT_CONF.symlink_to(self.conf)
        self.linked_conf = True
        r = self.root
        if self._munge_works():
            self.log(f"using the munged already serving {MUNGE_SOCKET}")
        else:
            self.made_munge_dir = not MUNGE_SOCKET.parent.exists()
            MUNGE_SOCKET.parent.mkdir(parents=True, exist_ok=True)
            shutil.chown(MUNGE_SOCKET.parent, "munge", "munge")
            os.chmod(MUNGE_SOCKET.parent, 0o755)
            self._spawn(
                "munged",
                [
                    "munged",
                    "--foreground",
                    f"--socket={MUNGE_SOCKET}",
                    f"--pid-file={r}/munge/munged.pid",
                    f"--log-file={r}/munge/munged.log",
                    f"--seed-file={r}/munge/munged.seed",
                    f"--key-file={MUNGE_KEY}",
                ],
                user="munge",
                group="munge",
            )
            wait_for("munged", lambda: self._alive("munged") and self._munge_works())

        data = r / "mysql" / "data"
        subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                "--user=root",
                f"--datadir={data}",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
        )
        sock = r / "mysql" / "mysqld.sock"
        self._spawn(
            "mariadbd",
            [
                "mariadbd",
                "--no-defaults",
                "--user=root",
                f"--datadir={data}",
                f"--socket={sock}",
                f"--port={self.ports['mariadb']}",
                "--bind-address=127.0.0.1",
                f"--pid-file={r}/run/mariadbd.pid",
                "--innodb-buffer-pool-size=64M",
            ],
        )
        wait_for(
            "MariaDB",
            lambda: self._alive("mariadbd") and self._listening(self.ports["mariadb"]),
            log_file=r / "log" / "mariadbd.out",
        )
        sql = (
            "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';"
            "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';"
            "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
            "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
        )
        self.run("mariadb", "--no-defaults", f"--socket={sock}", "-e", sql)

        self._spawn("slurmdbd", ["slurmdbd", "-D"])
        wait_for(
            "slurmdbd",
            lambda: self._alive("slurmdbd") and self._listening(self.ports["slurmdbd"]),
            log_file=r / "log" / "slurmdbd.log",
        )
        self.run("sacctmgr", "-i", "add", "cluster", CLUSTER)
        self.run("sacctmgr", "-i", "add", "account", ACCOUNT, "Description=tests")
        self.run("sacctmgr", "-i", "add", "user", "root", f"Account={ACCOUNT}")

        self._spawn("slurmctld", ["slurmctld", "-D", "-i"])
        wait_for(
            "slurmctld",
            lambda: (
                self._alive("slurmctld")
                and self.run("scontrol", "ping", check=False).stdout.count("UP") > 0
            ),
            log_file=r / "log" / "slurmctld.log",
        )
        self._spawn("slurmd", ["slurmd", "-D", "-N", self.node])

        def node_idle():
            self._alive("slurmd")
            state = self.run("sinfo", "-h", "-N", "-o", "%T", check=False).stdout
            return "idle" in state

        wait_for("the node", node_idle, timeout_s=90, log_file=r / "log" / "slurmd.log")
        seconds = time.monotonic() - t0
        self.log(
            f"cluster up in {seconds:.0f} s: node {self.node}, {self.cpus} CPUs, "
            f"{self.memory_mb} MB, partitions {', '.join(PARTITIONS)}"
        )
        return seconds

    def stop(self) -> None:
        """Cancel every job of the cluster, then end the daemons started here (slurmd first,
        munged last) by PID: SIGTERM, SIGKILL after 30 s."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            try:
                self.run("scancel", "--user=root", check=False, timeout=30)
                end = time.monotonic() + 60
                while time.monotonic() < end:
                    queue = self.run("squeue", "-h", "-o", "%i", check=False, timeout=30)
                    if queue.returncode != 0 or not queue.stdout.strip():
                        break
                    time.sleep(1)
            except (OSError, subprocess.SubprocessError) as err:
                self.log(f"scancel: {err}")
        if self.linked_conf and DEFAULT_CONF.is_symlink():
            if os.readlink(DEFAULT_CONF) == str(self.conf):
                DEFAULT_CONF.unlink()
            self.linked_conf = False
        for name in ("slurmd", "slurmctld", "slurmdbd", "mariadbd", "munged"):
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            self.log(f"stopped {name} (PID {proc.pid}, exit {proc.returncode})")
        if self.made_munge_dir:
            shutil.rmtree(MUNGE_SOCKET.parent, ignore_errors=True)
            self.made_munge_dir = False

    def __enter__(self) -> OneNodeCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
