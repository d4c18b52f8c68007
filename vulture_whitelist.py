"""Names the unused-code check (vulture) cannot see used, each with the reason.

Run: ``vulture launcher vulture_whitelist.py --min-confidence 60`` (part of scripts/run-tests.sh).
Only three kinds of names belong here: the public API (documented in the README),
hooks that Python or a library calls by name, and parameters whose names a
library's signature fixes. Anything else that vulture reports is dead: delete it.
"""

# ruff: noqa
# Public API (README): lazy names of ``import launcher``, results, the worker context, the cache.
__getattr__  # launcher/__init__.py: module __getattr__, called by Python for launcher.launch etc.
wall_time  # RunResult.wall_time
_.gather  # ctx.gather
_.main_process_first  # ctx.main_process_first
_.data_wait_fraction  # ctx.data.data_wait_fraction, the loaders' data-wait meter
_.maybe_save  # ctx.checkpointer(): the checkpointer's save when due, and how long its latest save held training
_.last_timing
_.blocked
_.held_at_step
_.scale  # ctx.grad_scaler()'s NoOpScaler: torch.amp.GradScaler's methods, called by the user's loop
_.unscale_
_.get_scale
_.is_enabled
new_scale  # NoOpScaler.update: GradScaler.update's parameter name
map_in_threads  # launcher.runtime.data.preprocess: per-sample CPU work in threads (docs/preprocessing.md)
CachedDataset  # launcher.runtime.cache.CachedDataset and its statistics
_.stats
_.reset_stats
_.cached_items
_.hit_rate
# launcher.testing: helpers for the project's tests and benchmarks (and for users testing their jobs).
clean_environment
run_launcher
new_tag
wait_until_gone
kill_tagged
run_in_terminal
screen_lines

# Hooks called by name: by Python, torch's DataLoader, pickle, elastic's LogsSpecs.
_.__loader__  # bootstrap: a script run as __main__ gets the loader Python would give it
_.check_worker_number_rationality  # DataLoader hook (runtime/data/loader.py)
_.persistent_id  # pickle.Pickler hook (runtime/data/pickling.py)
_._make_log_dir  # DefaultLogsSpecs hook (supervise/agent.py)
rdzv_run_id  # ...and that hook's parameter, named by elastic's signature
_.maxstring  # reprlib.Repr's limits, read by reprlib (cli/end_of_run.py; Python 3.10's Repr takes no arguments)
_.maxother
_.maxlist
_.maxtuple
_.maxdict
_.maxset

# Imported for their side effect: loaded once in the forkserver, shared by every fork (supervise/preload.py).
launcher
_.store  # WorkerGroup.store, read by elastic's agent: cleared between rounds (supervise/agent.py)
_._store  # the store elastic's agent and StaticTCPRendezvous read, replaced each round (supervise/agent.py, rendezvous.py)

_._shared_tcp_store_server  # DynamicRendezvousHandler's workers' store server, dropped each round (compat/elastic.py)
_._bootstrap_store_info  # ...and where it says that store is, dropped with it

# slurm: settings written into #SBATCH lines by name (slurm/script.py reads them with getattr).
_.account
_.qos
_.constraint
# launcher.testing, the pytest plugin: hooks pytest calls by name, and pytest's own attributes set there.
pytest_addhooks
pytest_configure
pytest_collection_finish
pytest_collect_file
pytest_unconfigure
pytest_pyfunc_call
_.hasmarkup  # pytest's TerminalWriter: no colour codes in a rank's report
_.create_module  # importlib's Loader protocol (the rank's assertion rewriter)
_._reprcompare  # pytest's hook for explanations of rewritten comparisons
