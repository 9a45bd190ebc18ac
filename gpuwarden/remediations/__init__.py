"""Remediation engine and playbooks (not built yet; DESIGN.md "How data flows", step 4).

The fleet-wide safety limits it will use already exist: `gpuwarden.fleet` (budget leases, leader
election, registration). Health values with suggested actions come from `gpuwarden.health`.
"""
