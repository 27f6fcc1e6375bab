//! Which local models are in memory: loaded on first use, within a memory budget shared by all
//! local experts (least recently used idle models make room), unloaded after an idle time.
//!
//! A loaded model is an `Arc<Loaded>`; every request and stream holds a clone while it runs, so
//! "idle" means nobody but the slot holds it. Unloading drops the slot's clone: the engine
//! thread stops and the memory goes back as soon as the last stream using it ends.

use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use moe_sovereign_experts::ExpertError;

/// How local models share the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResidencyPolicy {
    /// Total bytes of model files that may be resident at once (`None`: no limit).
    pub memory_budget: Option<u64>,
    /// Unload a model nobody used for this long (`None`: never).
    pub idle_unload: Option<Duration>,
    /// How long a request waits for its model to load before it gets a 529 with `retry-after`.
    pub load_wait: Duration,
}

impl Default for ResidencyPolicy {
    fn default() -> Self {
        Self {
            memory_budget: None,
            idle_unload: Some(Duration::from_secs(15 * 60)),
            load_wait: Duration::from_secs(30),
        }
    }
}

/// The shared book of slots, one per local expert.
pub struct Residency {
    policy: ResidencyPolicy,
    slots: Mutex<Vec<Weak<dyn Resident>>>,
    observer: Mutex<Option<Observer>>,
}

/// What happened to a slot's model, for whoever shows it (the dashboard, the tray).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Loading started.
    Loading,
    /// In memory.
    Loaded,
    /// The load failed (why).
    Failed(String),
    /// Out of memory again (idle, budget, or asked).
    Unloaded,
}

/// Told about every [`Change`], with the slot's name.
pub type Observer = Arc<dyn Fn(&str, Change) + Send + Sync>;

/// What the residency needs of a slot; implemented by [`Slot`] for any loaded type.
trait Resident: Send + Sync {
    fn name(&self) -> &str;
    fn size(&self) -> u64;
    /// Loaded and used by nobody else.
    fn idle_since(&self) -> Option<Instant>;
    fn is_loaded(&self) -> bool;
    /// Drops the model if nobody uses it and it has been idle at least `min_idle`, checked and
    /// taken under one lock (a request cannot take it in between and end up beside a second
    /// copy); whether it was dropped.
    fn unload_if_idle(&self, min_idle: Duration) -> bool;
}

/// One model's place in memory.
pub struct Slot<T> {
    name: String,
    size: u64,
    state: Mutex<SlotState<T>>,
    loading: tokio::sync::Mutex<()>,
}

struct SlotState<T> {
    loaded: Option<Arc<T>>,
    last_used: Instant,
}

impl<T: Send + Sync + 'static> Slot<T> {
    fn current(&self) -> Option<Arc<T>> {
        let mut state = lock(&self.state);
        state.last_used = Instant::now();
        state.loaded.clone()
    }
}

impl<T: Send + Sync + 'static> Resident for Slot<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn idle_since(&self) -> Option<Instant> {
        let state = lock(&self.state);
        match &state.loaded {
            Some(loaded) if Arc::strong_count(loaded) == 1 => Some(state.last_used),
            _ => None,
        }
    }

    fn is_loaded(&self) -> bool {
        lock(&self.state).loaded.is_some()
    }

    fn unload_if_idle(&self, min_idle: Duration) -> bool {
        let dropped = {
            let mut state = lock(&self.state);
            match &state.loaded {
                Some(loaded)
                    if Arc::strong_count(loaded) == 1 && state.last_used.elapsed() >= min_idle =>
                {
                    state.loaded.take()
                }
                _ => None,
            }
        };
        // Dropped outside the lock: the engine's thread stops here.
        let unloaded = dropped.is_some();
        drop(dropped);
        if unloaded {
            tracing::info!(expert = %self.name, "local model unloaded");
        }
        unloaded
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn mib(bytes: u64) -> u64 {
    bytes / (1024 * 1024)
}

impl Residency {
    /// A residency with `policy`; when it unloads idle models, a task on the current tokio
    /// runtime checks every quarter of the idle time (at most every 30 s).
    pub fn new(policy: ResidencyPolicy) -> Arc<Self> {
        let residency = Arc::new(Self {
            policy,
            slots: Mutex::new(Vec::new()),
            observer: Mutex::new(None),
        });
        if let (Some(idle), Ok(handle)) =
            (policy.idle_unload, tokio::runtime::Handle::try_current())
        {
            let weak = Arc::downgrade(&residency);
            let tick = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
            handle.spawn(async move {
                loop {
                    tokio::time::sleep(tick).await;
                    let Some(residency) = weak.upgrade() else {
                        return;
                    };
                    residency.unload_idle(idle);
                }
            });
        }
        residency
    }

    /// Tells `observer` about every load, failure and unload from now on.
    pub fn observe(&self, observer: Observer) {
        *lock(&self.observer) = Some(observer);
    }

    fn tell(&self, name: &str, change: Change) {
        let observer = lock(&self.observer).clone();
        if let Some(observer) = observer {
            observer(name, change);
        }
    }

    /// Unloads `slot` if it is idle (at least `min_idle`) at this very moment; whether it did.
    fn unload_slot(&self, slot: &Arc<dyn Resident>, min_idle: Duration) -> bool {
        let unloaded = slot.unload_if_idle(min_idle);
        if unloaded {
            self.tell(slot.name(), Change::Unloaded);
        }
        unloaded
    }

    /// The loaded slots (named after their experts) and their sizes in bytes.
    pub fn loaded(&self) -> Vec<(String, u64)> {
        lock(&self.slots)
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|slot| slot.is_loaded())
            .map(|slot| (slot.name().to_owned(), slot.size()))
            .collect()
    }

    /// Unloads the model of slot `name` now: `Ok(true)` when it was loaded and nobody used it,
    /// `Ok(false)` when it was not loaded, an error while a request holds it.
    pub fn unload(&self, name: &str) -> Result<bool, String> {
        let slots: Vec<_> = lock(&self.slots)
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|slot| slot.name() == name && slot.is_loaded())
            .collect();
        let mut unloaded = false;
        for slot in slots {
            if !self.unload_slot(&slot, Duration::ZERO) && slot.is_loaded() {
                return Err(format!(
                    "{name} is answering a request; unload it when it is idle"
                ));
            }
            unloaded = true;
        }
        Ok(unloaded)
    }

    /// The memory budget for loaded models, in bytes.
    pub fn budget(&self) -> Option<u64> {
        self.policy.memory_budget
    }

    /// A slot for a model called `name` whose file has `size` bytes.
    pub fn slot<T: Send + Sync + 'static>(&self, name: &str, size: u64) -> Arc<Slot<T>> {
        let slot = Arc::new(Slot {
            name: name.to_owned(),
            size,
            state: Mutex::new(SlotState {
                loaded: None,
                last_used: Instant::now(),
            }),
            loading: tokio::sync::Mutex::new(()),
        });
        let weak: Weak<Slot<T>> = Arc::downgrade(&slot);
        let weak: Weak<dyn Resident> = weak;
        let mut slots = lock(&self.slots);
        slots.retain(|s| s.strong_count() > 0);
        slots.push(weak);
        slot
    }

    fn others(&self, name: &str) -> Vec<Arc<dyn Resident>> {
        lock(&self.slots)
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|s| s.name() != name)
            .collect()
    }

    fn unload_idle(&self, idle: Duration) {
        for slot in self.others("") {
            self.unload_slot(&slot, idle);
        }
    }

    /// Unloads least recently used idle models until `slot` fits the budget.
    fn make_room<T: Send + Sync + 'static>(&self, slot: &Slot<T>) -> Result<(), ExpertError> {
        let Some(budget) = self.policy.memory_budget else {
            return Ok(());
        };
        if slot.size > budget {
            return Err(ExpertError::Upstream(format!(
                "model {:?} ({} MiB) is larger than the local memory budget ({} MiB): raise [local] memory_budget_mib in config.toml",
                slot.name,
                mib(slot.size),
                mib(budget)
            )));
        }
        let others = self.others(&slot.name);
        let mut used: u64 = others
            .iter()
            .filter(|s| s.is_loaded())
            .map(|s| s.size())
            .sum();
        let mut idle: Vec<(Instant, &Arc<dyn Resident>)> = others
            .iter()
            .filter_map(|s| s.idle_since().map(|since| (since, s)))
            .collect();
        idle.sort_by_key(|(since, _)| *since);
        for (_, other) in idle {
            if used + slot.size <= budget {
                break;
            }
            // Taken by a request since the list was made: it stays, and counts.
            if self.unload_slot(other, Duration::ZERO) {
                tracing::info!(expert = %other.name(), to_load = %slot.name, "unloaded to stay within the memory budget");
                used -= other.size();
            }
        }
        if used + slot.size > budget {
            return Err(ExpertError::Overloaded {
                message: format!(
                    "the local memory budget ({} MiB) is taken by models answering other requests; model {:?} needs {} MiB",
                    mib(budget),
                    slot.name,
                    mib(slot.size)
                ),
                retry_after: Some(10),
            });
        }
        Ok(())
    }

    /// The slot's loaded model, loading it with `load` if needed. A load that takes longer
    /// than the policy's `load_wait` goes on in the background while this request gets a 529.
    pub async fn get<T, F, Fut>(
        self: &Arc<Self>,
        slot: &Arc<Slot<T>>,
        load: F,
    ) -> Result<Arc<T>, ExpertError>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, ExpertError>> + Send + 'static,
    {
        if let Some(loaded) = slot.current() {
            return Ok(loaded);
        }
        let residency = Arc::clone(self);
        let task_slot = Arc::clone(slot);
        let task = tokio::spawn(async move {
            let slot = task_slot;
            let _one_load_at_a_time = slot.loading.lock().await;
            if let Some(loaded) = slot.current() {
                return Ok(loaded);
            }
            residency.make_room(&slot)?;
            residency.tell(&slot.name, Change::Loading);
            let loaded = match load().await {
                Ok(loaded) => Arc::new(loaded),
                Err(error) => {
                    residency.tell(&slot.name, Change::Failed(error.to_string()));
                    return Err(error);
                }
            };
            {
                let mut state = lock(&slot.state);
                state.loaded = Some(Arc::clone(&loaded));
                state.last_used = Instant::now();
            }
            residency.tell(&slot.name, Change::Loaded);
            Ok(loaded)
        });
        match tokio::time::timeout(self.policy.load_wait, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(ExpertError::Upstream(format!(
                "expert {:?}: loading stopped: {e}",
                slot.name
            ))),
            Err(_) => Err(ExpertError::Overloaded {
                message: format!(
                    "expert {:?} is loading its model ({} MiB); retry in a few seconds",
                    slot.name,
                    mib(slot.size)
                ),
                retry_after: Some(5),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn policy(budget_mib: Option<u64>) -> ResidencyPolicy {
        ResidencyPolicy {
            memory_budget: budget_mib.map(|m| m * MIB),
            idle_unload: None,
            load_wait: Duration::from_secs(5),
        }
    }

    async fn ok(value: u32) -> Result<u32, ExpertError> {
        Ok(value)
    }

    #[tokio::test]
    async fn loads_once_and_reuses() {
        let residency = Residency::new(policy(None));
        let slot = residency.slot::<u32>("a", MIB);
        assert_eq!(*residency.get(&slot, || ok(1)).await.unwrap(), 1);
        assert_eq!(*residency.get(&slot, || ok(2)).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn the_observer_hears_every_load_failure_and_unload() {
        let residency = Residency::new(policy(None));
        let heard = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&heard);
        residency.observe(Arc::new(move |name: &str, change| {
            lock(&sink).push((name.to_owned(), change));
        }));
        let a = residency.slot::<u32>("a", MIB);
        let b = residency.slot::<u32>("b", MIB);
        residency.get(&a, || ok(1)).await.unwrap();
        residency.get(&a, || ok(1)).await.unwrap();
        let failed = residency
            .get(&b, || async {
                Err(ExpertError::Upstream("bad file".into()))
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(residency.unload("a"), Ok(true));
        let heard = lock(&heard).clone();
        assert_eq!(
            heard,
            vec![
                ("a".to_owned(), Change::Loading),
                ("a".to_owned(), Change::Loaded),
                ("b".to_owned(), Change::Loading),
                ("b".to_owned(), Change::Failed("bad file".into())),
                ("a".to_owned(), Change::Unloaded),
            ]
        );
    }

    #[tokio::test]
    async fn the_budget_unloads_the_least_recently_used_idle_model() {
        let residency = Residency::new(policy(Some(10)));
        let a = residency.slot::<u32>("a", 4 * MIB);
        let b = residency.slot::<u32>("b", 4 * MIB);
        let c = residency.slot::<u32>("c", 4 * MIB);
        drop(residency.get(&a, || ok(1)).await.unwrap());
        drop(residency.get(&b, || ok(2)).await.unwrap());
        drop(residency.get(&c, || ok(3)).await.unwrap());
        assert!(!a.is_loaded() && b.is_loaded() && c.is_loaded());
        // b in use: loading a must unload c, the only idle one.
        let in_use = residency.get(&b, || ok(0)).await.unwrap();
        drop(residency.get(&a, || ok(4)).await.unwrap());
        assert!(a.is_loaded() && b.is_loaded() && !c.is_loaded());
        // a and b both in use: c cannot fit, and says why.
        let also = residency.get(&a, || ok(0)).await.unwrap();
        let error = residency.get(&c, || ok(5)).await.unwrap_err();
        assert!(
            matches!(&error, ExpertError::Overloaded { message, retry_after: Some(_) } if message.contains("budget")),
            "{error:?}"
        );
        drop((in_use, also));
        assert_eq!(*residency.get(&c, || ok(6)).await.unwrap(), 6);
    }

    /// The unloader saw the model idle; a request took it a moment later: the unload must see
    /// that and keep it (it used to take the model regardless, and the next request loaded a
    /// second copy beside the one still answering).
    #[tokio::test]
    async fn unloading_checks_idleness_again_when_it_takes_the_model() {
        let residency = Residency::new(policy(None));
        let slot = residency.slot::<u32>("m", MIB);
        drop(residency.get(&slot, || ok(1)).await.unwrap());
        let resident: Arc<dyn Resident> = slot.clone();
        assert!(resident.idle_since().is_some(), "what the unloader saw");
        let in_use = residency.get(&slot, || ok(2)).await.unwrap();
        assert!(!residency.unload_slot(&resident, Duration::ZERO));
        assert!(slot.is_loaded());
        assert_eq!(*in_use, 1);
        drop(in_use);
        assert!(residency.unload_slot(&resident, Duration::ZERO));
        assert!(!slot.is_loaded());
        assert_eq!(*residency.get(&slot, || ok(3)).await.unwrap(), 3);
    }

    #[tokio::test]
    async fn a_model_larger_than_the_budget_is_refused_with_the_fix() {
        let residency = Residency::new(policy(Some(1)));
        let slot = residency.slot::<u32>("big", 2 * MIB);
        let error = residency.get(&slot, || ok(1)).await.unwrap_err();
        assert!(error.to_string().contains("memory_budget_mib"), "{error}");
    }

    #[tokio::test]
    async fn a_slow_load_answers_529_and_finishes_in_the_background() {
        let residency = Residency::new(ResidencyPolicy {
            load_wait: Duration::from_millis(20),
            ..policy(None)
        });
        let slot = residency.slot::<u32>("slow", MIB);
        let slow = || async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok(7)
        };
        let error = residency.get(&slot, slow).await.unwrap_err();
        assert!(
            matches!(
                error,
                ExpertError::Overloaded {
                    retry_after: Some(5),
                    ..
                }
            ),
            "{error:?}"
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(*residency.get(&slot, || ok(0)).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn idle_models_are_unloaded_and_busy_ones_kept() {
        let residency = Residency::new(ResidencyPolicy {
            idle_unload: Some(Duration::from_millis(400)),
            ..policy(None)
        });
        let idle = residency.slot::<u32>("idle", MIB);
        let busy = residency.slot::<u32>("busy", MIB);
        drop(residency.get(&idle, || ok(1)).await.unwrap());
        let held = residency.get(&busy, || ok(2)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert!(!idle.is_loaded());
        assert!(busy.is_loaded());
        drop(held);
    }
}
