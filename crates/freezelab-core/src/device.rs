//! Picking and starting a Burn device. Device start-up is async because WebGPU's is.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::{CoreError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Burn's pure-Rust `flex` CPU backend (native and wasm).
    Cpu,
    /// Burn's wgpu backend: Vulkan/Metal/DX12 natively, WebGPU in a browser.
    Wgpu,
}

impl std::str::FromStr for Backend {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(Backend::Cpu),
            "wgpu" => Ok(Backend::Wgpu),
            other => Err(CoreError::Invalid(format!("unknown device \"{other}\": use cpu or wgpu"))),
        }
    }
}

/// Starts the backend. In a browser, probe `navigator.gpu.requestAdapter()` before asking for
/// `Wgpu`: wgpu panics rather than erring when WebGPU is missing.
pub async fn init(backend: Backend) -> Result<Device> {
    match backend {
        Backend::Cpu => Ok(Device::flex()),
        #[cfg(feature = "gpu")]
        Backend::Wgpu => Device::wgpu_options()
            .init_async()
            .await
            .map_err(|e| CoreError::Device(format!("no usable GPU adapter: {e}"))),
        #[cfg(not(feature = "gpu"))]
        Backend::Wgpu => {
            Err(CoreError::Device("this build has no GPU backend (freezelab-core's `gpu` feature)".into()))
        }
    }
}

/// Reads a float tensor back to the host (async, as WebGPU requires).
pub async fn read_f32<const D: usize>(tensor: burn::tensor::Tensor<D>) -> Result<Vec<f32>> {
    let data = tensor.into_data_async().await.map_err(|e| CoreError::Device(format!("{e:?}")))?;
    data.convert::<f32>().try_into_vec::<f32>().map_err(|e| CoreError::Device(format!("{e:?}")))
}
