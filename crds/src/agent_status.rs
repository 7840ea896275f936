//! TODO: agent_status
