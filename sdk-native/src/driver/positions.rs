//! Resume positions: what the session reports, written to the store on a
//! blocking task, one write at a time.

use super::*;

pub(super) async fn wait_saved(
    saving: Option<&mut JoinHandle<std::io::Result<()>>>,
) -> Result<std::io::Result<()>, tokio::task::JoinError> {
    match saving {
        Some(handle) => handle.await,
        None => std::future::pending().await,
    }
}

impl Driver {
    /// Starts writing the positions if they changed and no write is under
    /// way; the next change after a write starts the next.
    pub(super) fn save_positions(&mut self) {
        let Some(store) = self.store.clone() else {
            return;
        };
        if !self.positions_dirty || self.saving.is_some() {
            return;
        }
        self.positions_dirty = false;
        let positions = self.positions.clone();
        self.saving = Some(tokio::task::spawn_blocking(move || store.save(&positions)));
    }
}
