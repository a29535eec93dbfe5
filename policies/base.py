"""The policy interface lives in the library, `memento.policy`; this module re-exports it for the implementations."""

from memento.policy import (  # noqa: F401
    CHECKPOINT_VERSION, DEFAULT_K, Candidates, CaseSelectionPolicy, Exclude, LearnedConfig, PolicyConfig, RerankConfig,
    Selection, TaskState, check_checkpoint, check_config, check_reward, config_from_dict, excluder, policy_transaction,
    read_checkpoint, sample_without_replacement, top_k, write_checkpoint,
)
