"""``provision``: lay out the node's disks, write the image, install the
bootloader, as the input's partitioning scheme says.

The driver runs it over SSH and judges it by its exit code (see
:mod:`fa_agent.errors`) and the status file; ``--dry-run`` prints what it
would do and touches nothing.
"""

import logging
import os
import shlex
import sys
import time
import urllib.request

from oslo_config import cfg

from fa_agent import conf as agent_conf
from fa_agent import data_drivers
from fa_agent import errors
from fa_agent import runner as agent_runner
from fa_agent import safe_json
from fa_agent import status as agent_status
from fa_agent import steps
from fa_agent.images import policy as image_policy
from fa_agent.steps import context

LOG = logging.getLogger('fa_agent')
LOG_FORMAT = '%(asctime)s %(levelname)s %(name)s: %(message)s'


def setup_logging(conf):
    LOG.setLevel(logging.DEBUG if conf.debug else logging.INFO)
    handlers = [logging.StreamHandler(sys.stderr)]
    if conf.log_file and not conf.dry_run:
        os.makedirs(os.path.dirname(os.path.abspath(conf.log_file)),
                    exist_ok=True)
        handlers.append(logging.FileHandler(conf.log_file))
    for handler in handlers:
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        LOG.addHandler(handler)
    return handlers


def read_input(conf):
    """The input document, from --input-data-url or --input-data-file;
    one too big or too deep is a ValueError (so BadInput), never a
    RecursionError."""
    if conf.input_data_url:
        for attempt in range(1, conf.input_retries + 1):
            try:
                with urllib.request.urlopen(conf.input_data_url,
                                            timeout=30) as reply:
                    return safe_json.load(reply, safe_json.MAX_INPUT_BYTES)
            except OSError as exc:
                LOG.warning('fetching %s (attempt %d of %d): %s',
                            conf.input_data_url, attempt,
                            conf.input_retries, exc)
                if attempt == conf.input_retries:
                    raise
                time.sleep(2)
    with open(conf.input_data_file, 'rb') as f:
        return safe_json.load(f, safe_json.MAX_INPUT_BYTES)


def load_request(conf):
    """The ProvisionRequest; every problem with the input is BadInput."""
    source = conf.input_data_url or conf.input_data_file
    try:
        document = read_input(conf)
        return data_drivers.get_driver(conf.data_driver, document).request
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise errors.BadInput('%s: %s' % (source, exc)) from exc


def print_plan(ctx, out=None):
    out = out or sys.stdout
    print(ctx.plan.to_text() if ctx.plan else '(no plan)', file=out)
    print('', file=out)
    number = 0
    for cmd in ctx.runner.commands:
        if cmd[0] == '#':
            for line in cmd[1].splitlines():
                print('    # ' + line, file=out)
        else:
            number += 1
            print('%3d %s' % (number, shlex.join(cmd)), file=out)


def main(argv=None):
    conf = agent_conf.new_conf()
    try:
        conf(sys.argv[1:] if argv is None else argv, project='fa-agent',
             default_config_files=[])
    except cfg.Error as exc:
        print('provision: %s' % exc, file=sys.stderr)
        return errors.BadInput.exit_code
    except SystemExit as exc:
        return exc.code if exc.code == 0 else errors.BadInput.exit_code
    handlers = setup_logging(conf)
    try:
        return run(conf)
    finally:
        for handler in handlers:
            LOG.removeHandler(handler)
            handler.close()


def run(conf, runner=None):
    """One run with parsed options; ``runner`` replaces the real one
    (tests pass a RecordingRunner that scripts the disks)."""
    status = agent_status.StatusFile(None if conf.dry_run
                                     else conf.status_file)
    if runner is not None:
        probe = runner
    elif conf.dry_run:
        runner, probe = (agent_runner.RecordingRunner(),
                         agent_runner.Runner(timeout=conf.command_timeout))
    else:
        runner = probe = agent_runner.Runner(timeout=conf.command_timeout)
    ctx = None
    try:
        request = load_request(conf)
        names = steps.selected(conf.steps, request.action)
        ctx = context.Context(request, runner, probe=probe, status=status,
                              target_dir=conf.target_dir,
                              settle_timeout=conf.settle_timeout,
                              image_policy=image_policy.ImagePolicy.from_conf(
                                  conf))
        steps.run(ctx, names)
    except errors.ProvisionError as exc:
        return failed(status, ctx, exc)
    except Exception as exc:
        LOG.exception('unexpected failure')
        return failed(status, ctx, errors.ProvisionError(
            '%s: %s' % (type(exc).__name__, exc)))
    result = {'devices': ctx.devices}
    if ctx.kexec is not None:
        result['kexec'] = ctx.kexec
    status.succeeded(result)
    if conf.dry_run:
        print_plan(ctx)
    LOG.info('provisioning %s', 'planned (dry run)' if conf.dry_run
             else 'succeeded')
    return 0


def failed(status, ctx, exc):
    LOG.error('provisioning failed (%s, exit code %d): %s',
              exc.error_class, exc.exit_code, exc)
    status.failed(exc, {'devices': ctx.devices} if ctx else None)
    return exc.exit_code


if __name__ == '__main__':
    sys.exit(main())
