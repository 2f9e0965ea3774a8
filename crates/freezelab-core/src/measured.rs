//! Memory of a training run as measured: what the allocator or the GPU memory pool actually
//! held (the computed figures, from the shapes alone, are freezelab_protocol::memory's).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use burn::tensor::Device;

use freezelab_protocol::memory::MeasureSource;

/// A global allocator that counts live bytes and their peak. Binaries opt in with
/// `#[global_allocator] static ALLOC: CountingAllocator = CountingAllocator;` (native and wasm).
pub struct CountingAllocator;

static LIVE: AtomicU64 = AtomicU64::new(0);
static PEAK: AtomicU64 = AtomicU64::new(0);
static INSTALLED: AtomicBool = AtomicBool::new(false);

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grow(layout.size() as u64);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grow(layout.size() as u64);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as u64, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE.fetch_sub(layout.size() as u64, Ordering::Relaxed);
            grow(new_size as u64);
        }
        new
    }
}

fn grow(bytes: u64) {
    INSTALLED.store(true, Ordering::Relaxed);
    let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

/// Measures peak memory over a span of work on one device.
pub struct PeakMeter {
    device: Device,
    baseline: u64,
    peak: u64,
}

impl PeakMeter {
    /// The source of measurements on `device`, if any is available.
    pub fn source(device: &Device) -> Option<MeasureSource> {
        if device.memory_pool_usage().is_some() {
            Some(MeasureSource::DevicePool)
        } else if INSTALLED.load(Ordering::Relaxed) {
            Some(MeasureSource::HostAllocator)
        } else {
            None
        }
    }

    fn live(device: &Device) -> u64 {
        match device.memory_pool_usage() {
            Some(usage) => usage.bytes_in_use,
            None => LIVE.load(Ordering::Relaxed),
        }
    }

    /// Starts a span: the allocator's peak is reset to what is live now.
    pub fn start(device: &Device) -> Self {
        let live = Self::live(device);
        PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
        PeakMeter { device: device.clone(), baseline: live, peak: live }
    }

    /// Samples the GPU pool (its peak can only be seen by sampling at points of high use).
    pub fn sample(&mut self) {
        self.peak = self.peak.max(Self::live(&self.device));
    }

    /// Peak bytes live during the span (absolute, including what was live at its start).
    pub fn peak(&mut self) -> u64 {
        self.sample();
        if self.device.memory_pool_usage().is_some() {
            self.peak
        } else {
            self.peak.max(PEAK.load(Ordering::Relaxed))
        }
    }

    pub fn baseline(&self) -> u64 {
        self.baseline
    }
}
