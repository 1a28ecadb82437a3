# Generates semcached.json, the Grafana dashboard: python3 deploy/grafana/dashboard.py > deploy/grafana/semcached.json
# Panels are laid out left to right in rows of 24 columns; every target is a PromQL expression
# that tests/e2e/observability/dashboard.test.mjs runs against a real Prometheus.
import json
SEL = 'instance=~"$instance",cache=~"$cache"'
INST = 'instance=~"$instance"'
RI = '$__rate_interval'
panels = []
pid = [0]
y = [0]
x = [0]
def row(title):
    pid[0] += 1
    if x[0] != 0:
        y[0] += 8; x[0] = 0
    panels.append({"type": "row", "title": title, "id": pid[0], "collapsed": False,
                   "gridPos": {"h": 1, "w": 24, "x": 0, "y": y[0]}, "panels": []})
    y[0] += 1
def panel(title, targets, unit="short", kind="timeseries", w=8, desc="", h=8, extra=None):
    pid[0] += 1
    if x[0] + w > 24:
        y[0] += h; x[0] = 0
    p = {"type": kind, "title": title, "id": pid[0], "description": desc,
         "datasource": {"type": "prometheus", "uid": "${datasource}"},
         "gridPos": {"h": h, "w": w, "x": x[0], "y": y[0]},
         "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
         "options": {},
         "targets": [{"refId": chr(65 + i), "expr": e, "legendFormat": l,
                      "datasource": {"type": "prometheus", "uid": "${datasource}"}}
                     for i, (e, l) in enumerate(targets)]}
    if kind == "timeseries":
        p["options"] = {"legend": {"displayMode": "list", "placement": "bottom"},
                        "tooltip": {"mode": "multi"}}
    if kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "value", "graphMode": "area"}
    if extra: p.update(extra)
    panels.append(p)
    x[0] += w
    if x[0] >= 24:
        x[0] = 0; y[0] += h

lookups = f'semcached_cache_lookups_total{{{SEL}}}'
hits = f'semcached_cache_lookups_total{{{SEL},result=~"exact|semantic"}}'

row("Hits")
panel("Hit ratio", [(f'sum(increase({hits}[$__range])) / sum(increase({lookups}[$__range]))', "hit ratio")],
      unit="percentunit", kind="stat", w=4, desc="Exact and semantic hits over all lookups in the time range.")
panel("Hit ratio by cache and tier",
      [(f'sum by (cache, result) (rate({hits}[{RI}])) / ignoring(result) group_left sum by (cache) (rate({lookups}[{RI}]))',
        "{{cache}} {{result}}")], unit="percentunit", w=10)
panel("Lookups per second", [(f'sum by (cache, result) (rate({lookups}[{RI}]))', "{{cache}} {{result}}")],
      unit="reqps", w=10)

row("Latency")
for title, metric, by in [("Lookup stage latency", "semcached_cache_stage_seconds_bucket", "stage"),
                          ("HTTP latency by route", "semcached_http_request_duration_seconds_bucket", "route")]:
    sel = SEL if metric.startswith("semcached_cache") else INST
    panel(title, [(f'histogram_quantile({q}, sum by ({by}, le) (rate({metric}{{{sel}}}[{RI}])))', f"p{int(q*100)} {{{{{by}}}}}")
                  for q in (0.5, 0.95, 0.99)], unit="s", w=9,
          desc="p50, p95 and p99." + (" Stages: normalize, embed, search, guards." if by == "stage" else ""))
panel("Requests within the latency objective",
      [(f'sum(rate(semcached_http_requests_within_objective_total{{{INST}}}[{RI}])) / sum(rate(semcached_http_requests_total{{{INST}}}[{RI}]))', "within objective"),
       (f'max(semcached_http_latency_objective_seconds{{{INST}}})', "objective (s)")],
      unit="percentunit", w=6, desc="The SLO's good ratio; the objective is server.latency_objective_ms.")

row("Savings")
panel("USD saved per hour (ROI)",
      [(f'sum(rate(semcached_cache_cost_saved_usd_total{{{SEL}}}[{RI}])) * 3600', "saved by hits"),
       (f'sum(rate(semcached_proxy_cost_usd_total{{{INST}}}[{RI}])) * 3600', "spent upstream (proxy)"),
       (f'sum(rate(semcached_proxy_verification_cost_usd_total{{{INST}}}[{RI}])) * 3600', "spent verifying")],
      unit="currencyUSD", w=8, desc="What hits saved against what misses and verification cost, per hour.")
panel("USD saved", [(f'sum(semcached_cache_cost_saved_usd_total{{{SEL}}})', "total"),
                    (f'sum(increase(semcached_cache_cost_saved_usd_total{{{SEL}}}[$__range]))', "in range")],
      unit="currencyUSD", kind="stat", w=4)
panel("Tokens saved per second", [(f'sum by (cache) (rate(semcached_cache_tokens_saved_total{{{SEL}}}[{RI}]))', "{{cache}}")],
      w=8)
panel("Tokens saved", [(f'sum(semcached_cache_tokens_saved_total{{{SEL}}})', "total")], kind="stat", w=4)
panel("Upstream time saved per second", [(f'sum by (provider) (rate(semcached_proxy_latency_saved_seconds_total{{{INST}}}[{RI}]))', "{{provider}}")],
      unit="s", w=8, desc="Seconds of upstream calls that proxy hits replaced, per second of wall time.")
panel("Proxy requests per second", [(f'sum by (provider, result) (rate(semcached_proxy_requests_total{{{INST}}}[{RI}]))', "{{provider}} {{result}}")],
      unit="reqps", w=8)
panel("Upstream error ratio",
      [(f'sum by (provider) (rate(semcached_proxy_requests_total{{{INST},result="upstream_error"}}[{RI}])) / sum by (provider) (rate(semcached_proxy_requests_total{{{INST},result!="hit"}}[{RI}]))', "{{provider}}")],
      unit="percentunit", w=8)

row("False-hit signals")
panel("Guard rejections per second", [(f'sum by (guard) (rate(semcached_cache_guard_rejections_total{{{SEL}}}[{RI}]))', "{{guard}}")],
      w=8, desc="Candidates above the threshold that a guard (negation, numbers, entities, ...) refused.")
panel("Hits withheld per second", [(f'sum by (reason, tier) (rate(semcached_cache_withheld_total{{{SEL}}}[{RI}]))', "{{reason}} {{tier}}")],
      w=8, desc="Hits found but answered upstream: shadow mode, or verification.")
panel("Verification disagreements",
      [(f'sum by (cache) (rate(semcached_cache_answer_comparisons_total{{{SEL},outcome="disagree"}}[{RI}])) / sum by (cache) (rate(semcached_cache_answer_comparisons_total{{{SEL}}}[{RI}]))', "{{cache}}")],
      unit="percentunit", w=8, desc="Withheld hits whose cached answer the model's answer contradicted.")
panel("Answers labelled wrong",
      [(f'sum by (cache) (rate(semcached_cache_feedback_total{{{SEL},label="wrong"}}[{RI}])) / sum by (cache) (rate(semcached_cache_feedback_total{{{SEL}}}[{RI}]))', "{{cache}}")],
      unit="percentunit", w=8, desc="Feedback from applications (POST .../entries/{id}/feedback).")
panel("Best candidate similarity", [(f'sum by (le) (rate(semcached_cache_best_similarity_bucket{{{SEL}}}[{RI}]))', "{{le}}")],
      kind="heatmap", w=8, extra={"options": {"calculate": False, "yAxis": {"unit": "short"}}},
      desc="Where lookups land against the threshold.")
panel("Drift", [(f'max by (cache, signal) (semcached_cache_drift{{{SEL}}})', "{{cache}} {{signal}}")],
      w=8, desc="1 while the last window of traffic differs from the windows before.")

row("Redis")
panel("Redis command latency p99", [(f'histogram_quantile(0.99, sum by (command, le) (rate(semcached_redis_command_duration_seconds_bucket{{{INST}}}[{RI}])))', "{{command}}")],
      unit="s", w=8)
panel("Redis errors per second", [(f'sum by (kind) (rate(semcached_redis_command_errors_total{{{INST}}}[{RI}]))', "{{kind}}"),
                                  (f'sum(rate(semcached_redis_retries_total{{{INST}}}[{RI}]))', "retries")], w=8)
panel("Circuit breaker", [(f'max(semcached_redis_breaker_state{{{INST}}})', "state")], kind="stat", w=4,
      extra={"fieldConfig": {"defaults": {"unit": "short", "mappings": [{"type": "value", "options": {
          "0": {"text": "closed", "color": "green"}, "1": {"text": "open", "color": "red"},
          "2": {"text": "half-open", "color": "orange"}}}]}, "overrides": []}})
panel("Redis bytes per second", [(f'sum(rate(semcached_redis_sent_bytes_total{{{INST}}}[{RI}]))', "sent"),
                                 (f'sum(rate(semcached_redis_received_bytes_total{{{INST}}}[{RI}]))', "received")],
      unit="Bps", w=8)
panel("Upstream bytes per second", [(f'sum by (provider, direction) (rate(semcached_proxy_upstream_bytes_total{{{INST}}}[{RI}]))', "{{provider}} {{direction}}")],
      unit="Bps", w=8)
panel("Redis pool", [(f'sum(semcached_redis_pool_connections{{{INST}}})', "connections"),
                     (f'sum(semcached_redis_pool_busy_connections{{{INST}}})', "busy"),
                     (f'sum(semcached_redis_commands_waiting{{{INST}}})', "waiting"),
                     (f'sum(semcached_redis_commands_in_flight{{{INST}}})', "in flight")], w=4)

row("Memory and entries")
panel("Entries per cache", [(f'sum by (cache) (semcached_cache_entries{{{SEL}}})', "{{cache}}")], w=8)
panel("Memory per cache", [(f'sum by (cache, part) (semcached_cache_memory_bytes{{{SEL}}})', "{{cache}} {{part}}")],
      unit="bytes", w=8, desc="Text, vectors and graph held in this process (a Redis cache's vectors live in Redis).")
panel("Removals per second", [(f'sum by (cache, reason) (rate(semcached_cache_removals_total{{{SEL}}}[{RI}]))', "{{cache}} {{reason}}")], w=8)

row("Process")
panel("CPU", [(f'sum by (instance) (rate(process_cpu_seconds_total{{{INST}}}[{RI}]))', "{{instance}}")], unit="short", w=6,
      desc="Cores in use.")
panel("Resident memory", [(f'sum by (instance) (process_resident_memory_bytes{{{INST}}})', "{{instance}}")], unit="bytes", w=6)
panel("Connections and workers", [(f'sum(semcached_http_open_connections{{{INST}}})', "open connections"),
                                  (f'sum(semcached_http_worker_queue{{{INST}}})', "worker queue"),
                                  (f'sum(semcached_http_workers_busy{{{INST}}})', "busy workers")], w=6)
panel("Memory per process", [(f'sum by (instance) (semcached_cache_memory_bytes{{{INST}}})', "caches {{instance}}"),
                             (f'sum by (instance) (process_resident_memory_bytes{{{INST}}})', "resident {{instance}}")],
      unit="bytes", w=6, desc="What the caches hold against what the process holds.")
panel("Threads and files", [(f'sum(process_threads{{{INST}}})', "threads"), (f'sum(process_open_fds{{{INST}}})', "open files")], w=6)

dash = {
  "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus", "description": "", "type": "datasource",
                "pluginId": "prometheus", "pluginName": "Prometheus"}],
  "__requires": [{"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"},
                 {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"}],
  "uid": "semcached", "title": "semcached", "description": "Hit ratio, latency, savings, false-hit signals, Redis, memory and process of semcached instances.",
  "tags": ["semcached", "llm", "cache"], "timezone": "", "editable": True, "graphTooltip": 1,
  "schemaVersion": 39, "version": 1, "refresh": "10s", "time": {"from": "now-1h", "to": "now"},
  "templating": {"list": [
    {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus", "current": {}, "hide": 0},
    {"name": "instance", "label": "Instance", "type": "query", "datasource": {"type": "prometheus", "uid": "${datasource}"},
     "query": {"query": "label_values(semcached_build_info, instance)", "refId": "instance"},
     "definition": "label_values(semcached_build_info, instance)", "refresh": 2, "multi": True, "includeAll": True, "allValue": ".+", "current": {}},
    {"name": "cache", "label": "Cache", "type": "query", "datasource": {"type": "prometheus", "uid": "${datasource}"},
     "query": {"query": "label_values(semcached_cache_entries{instance=~\"$instance\"}, cache)", "refId": "cache"},
     "definition": "label_values(semcached_cache_entries{instance=~\"$instance\"}, cache)", "refresh": 2, "multi": True, "includeAll": True, "allValue": ".+", "current": {}}]},
  "annotations": {"list": []},
  "panels": panels,
}
print(json.dumps(dash, indent=2))
