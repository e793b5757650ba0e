#!/usr/bin/env python3
"""Benchmark: power-on to the ramdisk's first heartbeat, per boot variant.

Boots the real cached ramdisk (``tools/build-ramdisk.sh``'s newest build,
or ``--ramdisk-dir``) the way the lab's Ironic does, as closely as one
QEMU process without the lab allows: q35, TCG, a virtio NIC, SeaBIOS or
OVMF (UEFI), an iPXE script like Ironic's (``boot.ipxe`` chaining a
per-MAC script with ``ipxe_config.template``'s deploy stanza and kernel
command line: ``selinux=0 troubleshoot=0 text``, ``[pxe]
kernel_append_params``, ``ipa-debug=1``, ``ipa-api-url=``,
``fa-ssh-key=``, ``ipa-global-request-id=``, ``BOOTIF=${mac}``,
``initrd=deploy_ramdisk``), kernel and initramfs over HTTP. It times QEMU
start -> the first ``POST /v1/heartbeat/<node>``.

The guest network is QEMU user networking with ``restrict=on``: slirp
answers DHCP (its ``bootfile=``) and TFTP (``tftp=``) itself, and every
TCP connection to ``10.0.2.100:80`` is relayed (``guestfwd``,
``tests/qemu/guestfwd_relay.py``) to one HTTP server of this bench on
127.0.0.1. That server serves the iPXE scripts, the kernel and the
initramfs, and stands in for Ironic's ``/v1/lookup`` and
``/v1/heartbeat`` only to timestamp the heartbeat: lookup answers a node
UUID, an agent token and a heartbeat timeout (all ``fa-heartbeat``
checks, ``fa_agent.heartbeat._lookup_answer``), heartbeat answers 202.

How each loader is reached (slirp has one ``bootfile`` for every client,
so the lab's dnsmasq "iPXE or not" answer, option 175, is emulated):

* BIOS ``rom``: the NIC's own iPXE ROM (QEMU's ``pxe-virtio.rom``, the
  one libvirt gives the lab's VMs) gets the script URL straight from
  DHCP, which is what the lab's dnsmasq answers it (it sends option 175,
  so Ironic's ``tag:ipxe`` entry applies and ``undionly.kpxe`` is never
  loaded);
* BIOS ``undionly.kpxe`` / ``ipxe.pxe``: the first ``boot.ipxe`` fetch
  answers ``chain tftp://10.0.2.2/<loader>`` (what a non-iPXE PXE ROM
  gets from DHCP), later ones the real script: the chained loader does
  its own DHCP and HTTP downloads;
* UEFI ``snponly.efi`` / ``ipxe.efi``: OVMF's PXE client gets the
  loader over TFTP; once it is read through, the TFTP file becomes a
  script chaining ``boot.ipxe`` (:class:`LoaderSwap`), which the loader's
  own DHCP and TFTP request then gets.

Variants (``--variants``, comma separated; ``name`` from VARIANTS or
``firmware:loader[:option...]``, either followed by ``@DIR`` to boot the
ramdisk build in DIR instead) run in alternated rounds; each result is
the median, min and max over rounds, with its ratio to the first
variant (the baseline: today's lab settings). Milestones per boot, from
the HTTP server and the serial console: script fetched, kernel and
initramfs downloaded, first kernel message, systemd started, lookup,
heartbeat. Needs qemu-system-x86_64, the ipxe and ovmf packages, and for
the compression options zstd/lz4/gzip; runs as any user. Usage::

    .venv/bin/python tools/bench_ramdisk_boot.py [--rounds 3]
        [--variants bios,bios-quiet,...] [--analyze] [--json]

``--analyze`` logs in over SSH after the heartbeat of each boot (the key
is on the kernel command line, as the conductor's is) and prints
``systemd-analyze`` critical chain and blame of ``fa-heartbeat``.
"""

import argparse
import contextlib
import hashlib
import http.server
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, 'agent'))

from fa_agent import heartbeat  # noqa: E402

RELAY = os.path.join(REPO, 'tests', 'qemu', 'guestfwd_relay.py')
CACHE = os.environ.get('FA_CACHE_DIR', '/var/cache/ironic-fa-driver')
IPXE_DIR = '/usr/lib/ipxe'
OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd'
OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd'
MAC = '52:54:00:fa:b0:01'
HTTP_HOST = '10.0.2.100'
NODE = str(uuid.UUID(int=0xfab007))
TOKEN = 'bench-agent-token'
# tools/lab/ironic.py [pxe] kernel_append_params
LAB_APPEND = 'console=ttyS0,115200 nofb'
# Options a variant may name: extra kernel parameters, the initramfs
# compressor (the cached one is zstd -19 --long=27), vCPUs.
OPTIONS = {
    'quiet': {'append': 'quiet'},
    'loglevel3': {'append': 'loglevel=3'},
    'noudevlog': {'append': 'udev.log_level=err'},
    'smp1': {'smp': 1},
    'smp4': {'smp': 4},
    'zstd3': {'compress': ('zstd', '-q', '-T0', '-3')},
    'zstd19': {'compress': ('zstd', '-q', '-T0', '-19')},
    'lz4': {'compress': ('lz4', '-q', '-l', '-9')},
    'gzip': {'compress': ('gzip', '-6', '-n')},
    'cpio': {'compress': ('cat',)},
    # no BOOTIF=${mac} on the kernel line, as Ironic's GRUB configurations
    # (UEFI pxe, http boot) write it: the ramdisk must find its port
    'nobootif': {'bootif': False},
}
VARIANTS = {
    'bios': 'bios:rom',
    'bios-undionly': 'bios:undionly.kpxe',
    'bios-ipxe.pxe': 'bios:ipxe.pxe',
    'bios-quiet': 'bios:rom:quiet',
    'bios-loglevel3': 'bios:rom:loglevel3',
    'bios-lz4': 'bios:rom:lz4',
    'bios-zstd3': 'bios:rom:zstd3',
    'uefi': 'uefi:snponly.efi',
    'uefi-ipxe.efi': 'uefi:ipxe.efi',
    'uefi-ipxe.efi-quiet': 'uefi:ipxe.efi:quiet',
    'uefi-quiet': 'uefi:snponly.efi:quiet',
    'bios-nobootif': 'bios:rom:quiet:nobootif',
}
# Console lines that mark a boot phase (first occurrence, seconds).
CONSOLE_MARKS = (
    ('kernel', 'Linux version'),
    ('unpacked', 'Freeing initrd memory'),
    ('systemd', 'systemd['),
)


class BenchError(Exception):
    pass


def parse_variant(text):
    text, _, ramdisk = text.partition('@')
    spec = VARIANTS.get(text, text)
    firmware, _, rest = spec.partition(':')
    loader, *options = rest.split(':') if rest else ['rom']
    if firmware not in ('bios', 'uefi'):
        raise BenchError('%s: firmware must be bios or uefi' % text)
    if firmware == 'uefi' and loader == 'rom':
        raise BenchError('%s: UEFI needs a loader (snponly.efi, ipxe.efi)'
                         % text)
    variant = {'name': text + ('@' + os.path.basename(ramdisk.rstrip('/'))
                               if ramdisk else ''),
               'firmware': firmware, 'loader': loader, 'append': [],
               'smp': 2, 'compress': None, 'ramdisk': ramdisk or None,
               'bootif': True}
    for option in options:
        if option not in OPTIONS:
            raise BenchError('%s: unknown option %r (one of %s)' % (
                text, option, ', '.join(sorted(OPTIONS))))
        for key, value in OPTIONS[option].items():
            if key == 'append':
                variant['append'].append(value)
            else:
                variant[key] = value
    return variant


def newest_ramdisk(cache=CACHE):
    builds = [os.path.join(cache, 'ramdisk', name)
              for name in os.listdir(os.path.join(cache, 'ramdisk'))]
    builds = [path for path in builds
              if os.path.exists(os.path.join(path, 'initramfs'))]
    if not builds:
        raise BenchError('no ramdisk in %s: run tools/build-ramdisk.sh'
                         % cache)
    return max(builds, key=lambda path: os.path.getmtime(
        os.path.join(path, 'initramfs')))


def recompress(initramfs, compress, workdir):
    """The initramfs with another compressor, cached in ``workdir``."""
    if compress is None:
        return initramfs
    key = hashlib.sha256(('%s %s %s' % (
        initramfs, os.path.getmtime(initramfs), compress)).encode())
    path = os.path.join(workdir, 'initramfs-%s' % key.hexdigest()[:12])
    if not os.path.exists(path):
        with open(path + '.tmp', 'wb') as out:
            unzstd = subprocess.Popen(['zstd', '-dcq', '--long=27',
                                       initramfs], stdout=subprocess.PIPE)
            packer = subprocess.Popen(list(compress), stdin=unzstd.stdout,
                                      stdout=out)
            unzstd.stdout.close()
            if packer.wait() or unzstd.wait():
                raise BenchError('recompressing with %s failed' % (
                    ' '.join(compress)))
        os.rename(path + '.tmp', path)
    return path


class LoaderSwap(threading.Thread):
    """Stands in for dnsmasq's "iPXE or not" answer on slirp's TFTP.

    slirp's DHCP names the same boot file to the firmware's PXE client
    and to the iPXE it loads, so iPXE would load itself forever. This
    watches the TFTP directory (inotify): once slirp is reading the loader
    (a transfer of many reads, not the firmware's size probe), the file
    is replaced by an iPXE script that chains ``boot.ipxe`` over
    HTTP, which is what the loader's own DHCP request gets in the lab.
    """

    IN_ACCESS = 0x1

    def __init__(self, directory, name):
        super().__init__(daemon=True)
        import ctypes
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise BenchError('inotify_init1 failed')
        self.libc.inotify_add_watch(
            self.fd, directory.encode(),
            self.IN_ACCESS)
        self.directory, self.name = directory, name
        self.stopped = threading.Event()
        self.swapped = None

    def run(self):
        import select
        import struct
        reads = 0
        while not self.stopped.is_set() and self.swapped is None:
            if not select.select([self.fd], [], [], 0.2)[0]:
                continue
            data = os.read(self.fd, 65536)
            while data:
                _wd, mask, _cookie, length = struct.unpack_from(
                    'iIII', data)
                name = data[16:16 + length].rstrip(b'\0').decode()
                data = data[16 + length:]
                if name != self.name:
                    continue
                if mask & self.IN_ACCESS:
                    reads += 1
                # Mid-transfer: slirp reads the loader through the file
                # descriptor it opened, so the rename does not touch that
                # transfer, and the loader's own request, which may come
                # before slirp closes it, already finds the script.
                if reads > 8:
                    script = os.path.join(self.directory, 'script.tmp')
                    with open(script, 'w') as f:
                        f.write('#!ipxe\nchain http://%s/boot.ipxe\n'
                                % HTTP_HOST)
                    os.rename(script, os.path.join(self.directory,
                                                   self.name))
                    self.swapped = time.monotonic()

    def stop(self):
        self.stopped.set()
        self.join(2)
        os.close(self.fd)


class Boot:
    """What the HTTP server saw of one boot: seconds since QEMU start."""

    def __init__(self, variant, kernel, initramfs, cmdline):
        self.variant = variant
        self.kernel = kernel
        self.initramfs = initramfs
        self.cmdline = cmdline
        self.started = None
        self.marks = {}
        self.script_fetches = 0
        self.heartbeat = threading.Event()
        self.lock = threading.Lock()

    def mark(self, name):
        with self.lock:
            if self.started is not None and name not in self.marks:
                self.marks[name] = time.monotonic() - self.started


def scripts(boot):
    """(boot.ipxe, per-MAC script) as Ironic writes them, shortened to
    what a single-NIC node runs."""
    base = 'http://%s' % HTTP_HOST
    boot_ipxe = ('#!ipxe\nchain %s/pxelinux.cfg/${mac:hexhyp} || '
                 'shell\n' % base)
    deploy = (
        '#!ipxe\nset attempts:int32 10\nset i:int32 0\ngoto deploy\n'
        ':deploy\nimgfree\n'
        'kernel %(base)s/deploy_kernel %(cmdline)s %(bootif)s'
        'initrd=deploy_ramdisk || goto retry\n'
        'initrd %(base)s/deploy_ramdisk || goto retry\nboot\n'
        ':retry\niseq ${i} ${attempts} && goto fail ||\ninc i\n'
        'sleep ${i}\ngoto deploy\n:fail\npoweroff\n'
        % {'base': base, 'cmdline': boot.cmdline,
           'bootif': 'BOOTIF=${mac} ' if boot.variant['bootif'] else ''})
    return boot_ipxe, deploy


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'bench'

    def log_message(self, *args):
        pass

    def send(self, status, body, content_type='application/json'):
        self.send_response(status)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_file(self, path, name):
        boot = self.server.boot
        size = os.path.getsize(path)
        self.send_response(200)
        self.send_header('Content-Type', 'application/octet-stream')
        self.send_header('Content-Length', str(size))
        self.end_headers()
        boot.mark(name + '_start')
        with open(path, 'rb') as f:
            shutil.copyfileobj(f, self.wfile, 1 << 20)
        boot.mark(name + '_done')

    def do_GET(self):
        boot = self.server.boot
        path = urllib.parse.urlsplit(self.path).path
        boot_ipxe, deploy = scripts(boot)
        if path == '/boot.ipxe':
            with boot.lock:
                boot.script_fetches += 1
                first = boot.script_fetches == 1
            loader = boot.variant['loader']
            if first and boot.variant['firmware'] == 'bios' \
                    and loader != 'rom':
                # what DHCP hands a PXE ROM that is not iPXE
                body = '#!ipxe\nchain tftp://10.0.2.2/%s\n' % loader
            else:
                boot.mark('script')
                body = boot_ipxe
            self.send(200, body.encode(), 'text/plain')
        elif path.startswith('/pxelinux.cfg/'):
            self.send(200, deploy.encode(), 'text/plain')
        elif path == '/deploy_kernel':
            self.send_file(boot.kernel, 'kernel')
        elif path == '/deploy_ramdisk':
            self.send_file(boot.initramfs, 'initramfs')
        elif path == '/v1/lookup':
            boot.mark('lookup')
            self.send(200, json.dumps({
                'node': {'uuid': NODE},
                'config': {'agent_token': TOKEN,
                           'heartbeat_timeout': 300}}).encode())
        else:
            self.send(404, b'{}')

    def do_POST(self):
        boot = self.server.boot
        length = int(self.headers.get('Content-Length') or 0)
        self.rfile.read(length)
        if self.path == '/v1/heartbeat/%s' % NODE:
            boot.mark('heartbeat')
            boot.heartbeat.set()
            self.send(202, b'')
        else:
            self.send(404, b'{}')


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def qemu_command(variant, workdir, http_port, ssh_port):
    netdev = ('user,id=net0,restrict=on,tftp=%s,'
              'hostfwd=tcp:127.0.0.1:%d-:22,'
              'guestfwd=tcp:%s:80-cmd:%s %s 127.0.0.1 %d' % (
                  os.path.join(workdir, 'tftp'), ssh_port, HTTP_HOST,
                  sys.executable, RELAY, http_port))
    if variant['firmware'] == 'bios':
        netdev += ',bootfile=http://%s/boot.ipxe' % HTTP_HOST
    else:
        netdev += ',bootfile=' + variant['loader']
    cmd = ['qemu-system-x86_64', '-machine', 'q35', '-accel', 'tcg',
           '-m', '2048', '-smp', str(variant['smp']), '-display', 'none',
           '-monitor', 'none', '-no-reboot', '-serial', 'stdio',
           '-netdev', netdev]
    if variant['firmware'] == 'bios':
        cmd += ['-device', 'virtio-net-pci,netdev=net0,mac=%s,bootindex=1'
                % MAC]
    else:
        nvram = os.path.join(workdir, 'OVMF_VARS.fd')
        shutil.copy(OVMF_VARS, nvram)
        cmd += ['-drive', 'if=pflash,format=raw,readonly=on,file='
                + OVMF_CODE, '-drive', 'if=pflash,format=raw,file=' + nvram,
                '-device', 'virtio-net-pci,netdev=net0,mac=%s,bootindex=1'
                % MAC]
    return cmd


def read_console(process, boot, log):
    pending = b''
    while True:
        data = process.stdout.read1(65536)
        if not data:
            return
        log.write(data)
        log.flush()
        pending = (pending + data)[-4096:]
        text = pending.decode(errors='replace')
        for name, marker in CONSOLE_MARKS:
            if marker in text:
                boot.mark(name)


def analyze(ssh_port, key):
    import paramiko
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect('127.0.0.1', port=ssh_port, username='root', pkey=key,
                   timeout=20, look_for_keys=False, allow_agent=False)
    try:
        _in, out, _err = client.exec_command(
            'systemd-analyze; systemd-analyze critical-chain '
            'fa-heartbeat.service; systemd-analyze blame | head -15; '
            'journalctl -b -o short-monotonic --no-pager '
            '-u fa-heartbeat -u systemd-networkd | tail -25',
            timeout=120)
        return out.read().decode(errors='replace')
    finally:
        client.close()


def boot_once(variant, ramdisk, workdir, server, timeout, show_analysis):
    import paramiko
    key = paramiko.ECDSAKey.generate(bits=256)
    cmdline = ' '.join(
        ['selinux=0', 'troubleshoot=0', 'text', LAB_APPEND]
        + variant['append']
        + ['ipa-debug=1', 'ipa-api-url=http://%s' % HTTP_HOST,
           '%s=%s' % (heartbeat.SSH_KEY_KERNEL_PARAM,
                      heartbeat.encode_public_key(key.get_name(),
                                                  key.get_base64())),
           'ipa-global-request-id=req-%s' % uuid.uuid4()])
    ramdisk = variant['ramdisk'] or ramdisk
    initramfs = recompress(os.path.join(ramdisk, 'initramfs'),
                           variant['compress'], workdir)
    boot = Boot(variant, os.path.join(ramdisk, 'vmlinuz'), initramfs,
                cmdline)
    server.boot = boot
    ssh_port = free_port()
    cmd = qemu_command(variant, workdir, server.server_address[1], ssh_port)
    log_path = os.path.join(workdir, 'console-%s.log' % variant['name'])
    swap = None
    if variant['firmware'] == 'uefi':
        tftp = os.path.join(workdir, 'tftp')
        shutil.copy(os.path.join(IPXE_DIR, variant['loader']), tftp)
        swap = LoaderSwap(tftp, variant['loader'])
        swap.start()
    with open(log_path, 'wb') as log:
        boot.started = time.monotonic()
        process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT)
        reader = threading.Thread(target=read_console,
                                  args=(process, boot, log), daemon=True)
        reader.start()
        try:
            if not boot.heartbeat.wait(timeout):
                raise BenchError('%s: no heartbeat within %d s; console in '
                                 '%s' % (variant['name'], timeout, log_path))
            analysis = analyze(ssh_port, key) if show_analysis else None
        finally:
            process.kill()
            process.wait()
            reader.join(5)
            if swap:
                swap.stop()
                if swap.swapped:
                    boot.marks['loader'] = swap.swapped - boot.started
    return dict(boot.marks, size=os.path.getsize(initramfs)), analysis


def summary(values):
    return {'median': statistics.median(values), 'min': min(values),
            'max': max(values)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--ramdisk-dir', help='a build with vmlinuz and '
                        'initramfs (default: the newest in %s)' % CACHE)
    parser.add_argument('--variants', default='bios,bios-quiet',
                        help='comma separated; the first is the baseline; '
                        'names: %s, or firmware:loader[:option...] with '
                        '(either one may end in @DIR: another build) '
                        'options %s' % (', '.join(VARIANTS),
                                        ', '.join(OPTIONS)))
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--timeout', type=int, default=300)
    parser.add_argument('--workdir', help='kept, with the consoles')
    parser.add_argument('--analyze', action='store_true')
    parser.add_argument('--json', action='store_true')
    args = parser.parse_args(argv)
    try:
        variants = [parse_variant(v) for v in args.variants.split(',')]
        ramdisk = args.ramdisk_dir or newest_ramdisk()
    except (BenchError, OSError) as exc:
        print('bench_ramdisk_boot: %s' % exc, file=sys.stderr)
        return 2
    needed = [os.path.join(IPXE_DIR, 'undionly.kpxe'), OVMF_CODE]
    missing = [path for path in needed if not os.path.exists(path)]
    if missing or not shutil.which('qemu-system-x86_64'):
        print('bench_ramdisk_boot: needs qemu-system-x86_64 and %s '
              '(apt-get install qemu-system-x86 ipxe ovmf)'
              % ', '.join(missing or needed), file=sys.stderr)
        return 2
    workdir = args.workdir or tempfile.mkdtemp(prefix='fa-bench-boot-')
    os.makedirs(os.path.join(workdir, 'tftp'), exist_ok=True)
    for name in ('undionly.kpxe', 'ipxe.pxe'):
        shutil.copy(os.path.join(IPXE_DIR, name),
                    os.path.join(workdir, 'tftp'))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print('ramdisk %s, workdir %s' % (ramdisk, workdir), flush=True)
    results = {v['name']: [] for v in variants}
    try:
        for number in range(args.rounds):
            # alternate who goes first
            order = variants if number % 2 == 0 else variants[::-1]
            for variant in order:
                marks, analysis = boot_once(variant, ramdisk, workdir,
                                            server, args.timeout,
                                            args.analyze)
                results[variant['name']].append(marks)
                print('round %d %-22s heartbeat %6.1f s  (%s)' % (
                    number + 1, variant['name'], marks['heartbeat'],
                    ', '.join('%s %.1f' % (k, v) for k, v in sorted(
                        marks.items(), key=lambda kv: kv[1])
                        if k not in ('heartbeat', 'size'))), flush=True)
                if analysis:
                    print(analysis, flush=True)
    except BenchError as exc:
        print('bench_ramdisk_boot: %s' % exc, file=sys.stderr)
        return 1
    finally:
        server.shutdown()
    base = statistics.median(m['heartbeat']
                             for m in results[variants[0]['name']])
    report = {}
    print('\npower-on -> first heartbeat, %d round(s), TCG, seconds:'
          % args.rounds)
    for variant in variants:
        runs = results[variant['name']]
        stats = summary([m['heartbeat'] for m in runs])
        phases = {}
        for phase in ('script', 'kernel_done', 'initramfs_done', 'kernel',
                      'unpacked', 'systemd', 'lookup'):
            values = [m[phase] for m in runs if phase in m]
            if values:
                phases[phase] = statistics.median(values)
        stats.update(ratio=stats['median'] / base, phases=phases,
                     initramfs_bytes=runs[0]['size'])
        report[variant['name']] = stats
        print('%-22s median %6.1f  min %6.1f  max %6.1f  x%.2f  %s' % (
            variant['name'], stats['median'], stats['min'], stats['max'],
            stats['ratio'], ' '.join('%s=%.1f' % kv
                                     for kv in phases.items())))
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    if not args.workdir:
        with contextlib.suppress(OSError):
            shutil.rmtree(workdir)
    return 0


if __name__ == '__main__':
    sys.exit(main())
