"""What the conductor and the agent share: the only part of the agent
package the driver (``ironic_fa_driver``) imports.

Both halves must agree on the scheme (load, validate, plan against a
node's disks, root-device hint semantics), the agent's input
(``provision.json``), the ramdisk's callback (the heartbeat URL with its
SSH host key, the kernel parameter that carries the deploy key) and how
secrets are masked in what either side reports. Keeping that agreement
in one module makes it reviewable as a whole, and lets the agent change
anything else freely: ``tests/unit/driver/test_driver_contract.py``
fails when the driver imports any other agent module or a private name.

Each name below is the agent's own implementation, re-exported; this
module adds no behaviour.
"""

from fa_agent import heartbeat as _heartbeat
from fa_agent import input_format as _input_format
from fa_agent import ramdisk_keys as _ramdisk_keys
from fa_agent import redact as _redact
from fa_agent import safe_json as _safe_json
from fa_agent import status_report as _status_report
from fa_agent.scheme import inventory as _inventory
from fa_agent.scheme import matcher as _matcher
from fa_agent.scheme import planner as _planner
from fa_agent.scheme import validator as _validator

# -- the scheme ---------------------------------------------------------------

#: A scheme document -> model.Scheme; raises InvalidScheme (every error
#: with its JSON path).
load_scheme = _validator.load
#: A scheme document -> [SchemeError] (empty when valid).
validate_scheme = _validator.validate
InvalidScheme = _validator.InvalidScheme
#: (model.Scheme, [BlockDevice]) -> Plan; raises PlanError (does not fit,
#: no disk matches).
plan = _planner.plan
PlanError = _planner.PlanError
#: A root-device hint's value without its operator (``s== abc`` -> abc).
plain_hint_value = _matcher.plain_value

# -- a node's disks -----------------------------------------------------------

BlockDevice = _inventory.BlockDevice
InventoryError = _inventory.InventoryError
#: The lsblk columns the agent reads (``lsblk -o``).
LSBLK_COLUMNS = _inventory.LSBLK_COLUMNS
#: Ironic's stored inspection inventory -> [BlockDevice].
disks_from_ironic = _inventory.from_ironic
#: ``lsblk --json --bytes -o LSBLK_COLUMNS`` output -> [BlockDevice].
disks_from_lsblk = _inventory.from_lsblk

# -- the agent's input (provision.json) ---------------------------------------

InputError = _input_format.InputError
EraseOptions = _input_format.EraseOptions
#: The document of a provisioning run (validates the scheme first).
provision_input = _input_format.build
#: The document of an erase run (Ironic's cleaning).
erase_input = _input_format.build_erase

# -- the ramdisk's callback ---------------------------------------------------

#: The kernel parameter that carries the deploy's SSH public key.
SSH_KEY_KERNEL_PARAM = _heartbeat.SSH_KEY_KERNEL_PARAM
#: The heartbeat's callback URL -> Callback(address, port, host key).
parse_callback_url = _heartbeat.parse_callback_url
#: An SSH public key blob -> the fingerprint the callback announces.
fingerprint_of_blob = _heartbeat.fingerprint_of_blob
#: (key type, base64 blob) -> the kernel parameter value.
encode_public_key = _heartbeat.encode_public_key
#: The driver_internal_info field where the conductor publishes the next
#: operation's public key for a ramdisk already running (fast track).
PUBLISHED_KEY_FIELD = _ramdisk_keys.KEY_FIELD
#: A heartbeat's (agent_status, agent_status_message) -> StatusReport, or
#: None when they are not fa-heartbeat's report of an agent run.
parse_status_report = _status_report.parse
StatusReport = _status_report.Report

# -- documents and secrets ----------------------------------------------------

#: Bounded JSON parsing (size, depth, number length).
load_json = _safe_json.loads
DocumentError = _safe_json.DocumentError
#: Text with credentials and signatures in URLs masked.
redact = _redact.text

__all__ = [name for name in dir() if not name.startswith('_')]
