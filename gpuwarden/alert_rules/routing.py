"""deploy/alertmanager/alertmanager.yml and deploy/prometheus/prometheus.yml, from the same alert groups.

Alertmanager: critical pages on-call, warning opens a ticket, info notifies nobody; any alert with a
`playbook` label also goes to the agents' `/v1/alerts` (bearer token from a file). Prometheus: the agents
are found in ZooKeeper (serverset_sd_configs on the endpoint znodes the fleet registration writes), so
there is no target list to keep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gpuwarden.alert_rules.model import Group


@dataclass(frozen=True)
class Deployment:
    """Where things live in one installation; the committed files carry these placeholders."""

    agents_url: str = "https://gpuwarden-agents.example:9837/v1/alerts"  # any agent takes any alert
    agents_token_file: str = "/etc/alertmanager/secrets/gpuwarden-token"
    pager_key_file: str = "/etc/alertmanager/secrets/pagerduty-routing-key"
    tickets_url_file: str = "/etc/alertmanager/secrets/slack-tickets-url"
    alertmanager: str = "alertmanager.example:9093"
    zookeeper: tuple[str, ...] = ("zk1.example:2181", "zk2.example:2181", "zk3.example:2181")
    serverset_paths: tuple[str, ...] = ("/gpuwarden/default/serverset",)
    scrape_interval: str = "15s"


PAGER, TICKETS, AGENTS, NOBODY = "oncall-pager", "oncall-tickets", "gpuwarden-agents", "nobody"


def alertmanager(groups: list[Group], d: Deployment) -> dict[str, Any]:
    by_group = {g.name: [a.name for a in g.alerts()] for g in groups}
    node_symptoms = by_group["gpuwarden-gpu"] + by_group["gpuwarden-inference"]
    node_symptoms = [a for a in node_symptoms if a != "GpuFleetUnderutilized"]  # fleet-wide, no node
    engine_state = by_group["gpuwarden-remediation"]
    return {
        "route": {
            "receiver": NOBODY,
            # One notification per alert and place: an ensemble, a node, or the whole job.
            "group_by": ["alertname", "job", "ensemble", "instance"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": [
                {
                    # First, and `continue`: a playbook alert also reaches people by its severity below.
                    # The engine's own alerts carry a `playbook` label too (the stuck one): they are for
                    # people only, never a trigger (an exhausted engine must not be asked to act on that).
                    "receiver": AGENTS,
                    "matchers": ['playbook=~".+"', f'alertname!~"{"|".join(engine_state)}"'],
                    "group_by": ["alertname", "instance", "playbook"],
                    "group_wait": "10s",
                    "group_interval": "1m",
                    "repeat_interval": "1h",  # the agent deduplicates; a repeat re-asks after a restart
                    "continue": True,
                },
                {"receiver": PAGER, "matchers": ['severity="critical"'], "repeat_interval": "1h"},
                {"receiver": TICKETS, "matchers": ['severity="warning"'], "repeat_interval": "12h"},
                {"receiver": NOBODY, "matchers": ['severity="info"']},
            ],
        },
        "inhibit_rules": [
            {
                # A lost quorum explains the at-risk and cannot-judge alerts of the same ensemble.
                "source_matchers": ['alertname="ZooKeeperQuorumLost"'],
                "target_matchers": ['alertname=~"ZooKeeperQuorumAtRisk|ZooKeeperCheckUnknown"'],
                "equal": ["job", "ensemble"],
            },
            {
                # Without quorum the fleet budget fails closed, so playbooks run out of attempts everywhere.
                "source_matchers": ['alertname="ZooKeeperQuorumLost"'],
                "target_matchers": ['alertname="RemediationExhausted"'],
                "equal": ["job"],
            },
            {
                # A node that is down explains every GPU and inference symptom of that node.
                "source_matchers": ['alertname="GpuwardenAgentDown"'],
                "target_matchers": [f'alertname=~"{"|".join(node_symptoms)}"'],
                "equal": ["job", "instance"],
            },
        ],
        "receivers": [
            {"name": NOBODY},
            {
                "name": PAGER,
                "pagerduty_configs": [{"routing_key_file": d.pager_key_file, "send_resolved": True}],
            },
            {
                "name": TICKETS,
                "slack_configs": [
                    {
                        "api_url_file": d.tickets_url_file,
                        "title": "{{ .CommonAnnotations.summary }}",
                        "text": "{{ .CommonAnnotations.description }}\n{{ .CommonAnnotations.runbook_url }}",
                        "send_resolved": True,
                    }
                ],
            },
            {
                "name": AGENTS,
                "webhook_configs": [
                    {
                        "url": d.agents_url,
                        "send_resolved": True,  # the agent never acts on resolved; it logs them
                        "max_alerts": 0,
                        "http_config": {
                            "authorization": {"type": "Bearer", "credentials_file": d.agents_token_file}
                        },
                    }
                ],
            },
        ],
    }


def prometheus(rule_files: list[str], d: Deployment, job: str) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": d.scrape_interval, "evaluation_interval": d.scrape_interval},
        "rule_files": rule_files,
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [d.alertmanager]}]}]},
        "scrape_configs": [
            {
                "job_name": job,
                # Each agent writes /gpuwarden/<cluster>/serverset/<node> (ephemeral) when it joins the
                # fleet: a node that stops or dies leaves discovery with its session.
                "serverset_sd_configs": [{"servers": list(d.zookeeper), "paths": list(d.serverset_paths)}],
                "relabel_configs": [
                    {
                        # instance = the node's fleet name (the znode's name), as `gpuwarden fleet ls` shows.
                        "source_labels": ["__meta_serverset_path"],
                        "regex": ".*/([^/]+)",
                        "target_label": "instance",
                    }
                ],
            }
        ],
    }
