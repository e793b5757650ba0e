"""Deploys and cleanings Ironic strands when it has no free worker to
continue them (ironic_fa_driver.stranded).

Real parts: Ironic's own conductor manager (its executors, set up as a
conductor sets them up, filled with work that waits, as after a burst of
heartbeats), its continue_node_deploy / continue_node_clean RPC
handlers, state machine, task manager and database. Mocked: the RPC that
the recovery sends, which needs a running conductor service (the test
checks it was sent, from the wait state).
"""

import datetime
import threading
import time
from unittest import mock

from ironic.common import exception
from ironic.common import states
from ironic.conductor import manager as conductor_manager
from ironic.conductor import utils as manager_utils
from oslo_utils import timeutils

from ironic_fa_driver import deploy
from ironic_fa_driver import stranded

import driver_base


class StrandedTestCase(driver_base.DriverTestCase):

    def setUp(self):
        super().setUp()
        self.manager = conductor_manager.ConductorManager('fa-test', 'topic')
        self.manager._init_executors(40, 5)
        release = threading.Event()
        self.addCleanup(self.manager._reserved_executor.shutdown, wait=False)
        self.addCleanup(self.manager._executor.shutdown, wait=False)
        self.addCleanup(release.set)
        # Every worker busy, the reserved ones too: a burst under way.
        # Submitted until Ironic has refused work for a while (a refused
        # submission can still grow the pool a moment later).
        refused_since = None
        deadline = time.monotonic() + 20
        while True:
            self.assertLess(time.monotonic(), deadline)
            try:
                self.manager._spawn_worker(release.wait, 30)
                refused_since = None
            except exception.NoFreeConductorWorker:
                refused_since = refused_since or time.monotonic()
                if time.monotonic() - refused_since > 0.3:
                    break
                time.sleep(0.01)

    def strand(self, wait_state, continue_call, target=None):
        """A node whose agent finished, continued while no worker is
        free: what Ironic leaves behind."""
        target = target or (states.ACTIVE if wait_state == states.DEPLOYWAIT
                            else states.AVAILABLE)
        node = self.create_node(provision_state=wait_state,
                                target_provision_state=target)
        self.assertRaises(Exception, continue_call, self.context, node.uuid)
        node.refresh()
        self.assertIsNone(node.reservation)
        self.assertEqual('No free conductor workers available',
                         self.history(node)[-1].event)
        return node

    def history(self, node):
        return self.dbapi.get_node_history_by_node_id(node.id)

    def age(self, node, seconds):
        node.provision_updated_at = (timeutils.utcnow()
                                     - datetime.timedelta(seconds=seconds))
        node.save()

    def run_periodic(self):
        return stranded.resume_all(
            driver_base.NodesOfThisConductor(self.dbapi), self.context,
            deploy.FuelAgentDeploy)

    def test_a_stranded_deploy_is_continued_from_wait_call_back(self):
        node = self.strand(states.DEPLOYWAIT,
                           self.manager.continue_node_deploy)
        self.assertEqual(states.DEPLOYING, node.provision_state)
        seen = []
        with mock.patch.object(
                manager_utils, 'notify_conductor_resume_deploy',
                autospec=True, side_effect=lambda task: seen.append(
                    (task.node.uuid, task.node.provision_state))) as resume:
            # Not yet: a node just moved to deploying may be about to get
            # its worker.
            self.assertEqual(0, self.run_periodic())
            self.age(node, 61)
            self.assertEqual(1, self.run_periodic())
        resume.assert_called_once_with(mock.ANY)
        self.assertEqual([(node.uuid, states.DEPLOYWAIT)], seen)
        node.refresh()
        self.assertEqual(states.DEPLOYWAIT, node.provision_state)
        # And it can be continued again, from the state Ironic expects.
        with mock.patch.object(self.manager, '_spawn_worker',
                               autospec=True) as spawn:
            self.manager.continue_node_deploy(self.context, node.uuid)
        spawn.assert_called_once()

    def test_a_stranded_cleaning_is_continued_from_clean_wait(self):
        node = self.strand(states.CLEANWAIT, self.manager.continue_node_clean)
        self.assertEqual(states.CLEANING, node.provision_state)
        self.age(node, 61)
        with mock.patch.object(manager_utils, 'notify_conductor_resume_clean',
                               autospec=True) as resume:
            self.assertEqual(1, self.run_periodic())
        resume.assert_called_once_with(mock.ANY)
        node.refresh()
        self.assertEqual((states.CLEANWAIT, states.AVAILABLE),
                         (node.provision_state, node.target_provision_state))

    def test_a_stranded_manual_cleaning_still_ends_in_manageable(self):
        node = self.strand(states.CLEANWAIT, self.manager.continue_node_clean,
                           target=states.MANAGEABLE)
        self.age(node, 61)
        with mock.patch.object(manager_utils, 'notify_conductor_resume_clean',
                               autospec=True):
            self.assertEqual(1, self.run_periodic())
        node.refresh()
        self.assertEqual((states.CLEANWAIT, states.MANAGEABLE),
                         (node.provision_state, node.target_provision_state))

    def test_only_nodes_ironic_found_no_worker_for_are_continued(self):
        # Locked: a worker runs its steps.
        locked = self.create_node(provision_state=states.DEPLOYING,
                                  target_provision_state=states.ACTIVE,
                                  reservation='another-conductor')
        # Unlocked without Ironic's "no free worker": a conductor that
        # stopped dropped its lock (Ironic's start-up fails such nodes).
        dropped = self.create_node(provision_state=states.DEPLOYING,
                                   target_provision_state=states.ACTIVE)
        # Another deploy interface's.
        other = self.create_node(provision_state=states.DEPLOYING,
                                 target_provision_state=states.ACTIVE,
                                 deploy_interface='fake')
        stranded_node = self.strand(states.DEPLOYWAIT,
                                    self.manager.continue_node_deploy)
        for node in (locked, dropped, other, stranded_node):
            self.age(node, 600)
        with mock.patch.object(manager_utils, 'notify_conductor_resume_deploy',
                               autospec=True) as resume:
            # Turned off: not even the stranded one.
            self.config(stranded_after=0, group='fuel_agent')
            self.assertEqual(0, self.run_periodic())
            self.config(stranded_after=60, group='fuel_agent')
            self.assertEqual(1, self.run_periodic())
        resume.assert_called_once_with(mock.ANY)
        for node in (locked, dropped, other):
            node.refresh()
            self.assertEqual(states.DEPLOYING, node.provision_state)
        self.assertEqual('another-conductor', locked.reservation)
