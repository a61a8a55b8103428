//! The SDK services every SPIRE plugin serves: Init (which services this plugin has) and
//! Config (configure, validate).

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::Error;
use crate::proto::config::config_server::Config;
use crate::proto::config::{
    ConfigureRequest, ConfigureResponse, CoreConfiguration, ValidateRequest, ValidateResponse,
};
use crate::proto::init::init_server::Init;
use crate::proto::init::{DeinitRequest, DeinitResponse, InitRequest, InitResponse};

/// A plugin that SPIRE configures.
pub trait Configurable: Send + Sync + 'static {
    /// Applies a configuration (replacing any earlier one only when this one is valid).
    ///
    /// # Errors
    /// The configuration error.
    fn configure(&self, trust_domain: &str, text: &str) -> Result<(), Error>;

    /// Checks a configuration without applying it.
    ///
    /// # Errors
    /// The configuration error.
    fn validate(&self, trust_domain: &str, text: &str) -> Result<(), Error>;

    /// Forgets the configuration (Deinit).
    fn deconfigure(&self);
}

/// `spire.service.private.init.v1.Init`.
#[derive(Debug)]
pub(crate) struct InitService<P> {
    pub(crate) plugin: Arc<P>,
    pub(crate) service_names: &'static [&'static str],
}

#[tonic::async_trait]
impl<P: Configurable> Init for InitService<P> {
    async fn init(&self, request: Request<InitRequest>) -> Result<Response<InitResponse>, Status> {
        tracing::debug!(
            host_services = ?request.get_ref().host_service_names,
            "initialized by the host"
        );
        Ok(Response::new(InitResponse {
            plugin_service_names: self.service_names.iter().map(|s| (*s).to_owned()).collect(),
        }))
    }

    async fn deinit(
        &self,
        _request: Request<DeinitRequest>,
    ) -> Result<Response<DeinitResponse>, Status> {
        tracing::debug!("deinitialized by the host");
        self.plugin.deconfigure();
        Ok(Response::new(DeinitResponse {}))
    }
}

/// `spire.service.common.config.v1.Config`.
#[derive(Debug)]
pub(crate) struct ConfigService<P> {
    pub(crate) plugin: Arc<P>,
}

fn trust_domain(core: Option<&CoreConfiguration>) -> &str {
    core.map_or("", |c| c.trust_domain.as_str())
}

#[tonic::async_trait]
impl<P: Configurable> Config for ConfigService<P> {
    async fn configure(
        &self,
        request: Request<ConfigureRequest>,
    ) -> Result<Response<ConfigureResponse>, Status> {
        let request = request.into_inner();
        let td = trust_domain(request.core_configuration.as_ref());
        match self.plugin.configure(td, &request.hcl_configuration) {
            Ok(()) => {
                tracing::info!(trust_domain = td, "configured");
                Ok(Response::new(ConfigureResponse {}))
            }
            Err(error) => {
                tracing::error!(%error, "configuration refused");
                // The host shows the status message to the operator: here the detail is
                // the operator's own configuration, so it is safe to return.
                Err(Status::new(
                    error.to_status().code(),
                    format!("plinth: {error}"),
                ))
            }
        }
    }

    async fn validate(
        &self,
        request: Request<ValidateRequest>,
    ) -> Result<Response<ValidateResponse>, Status> {
        let request = request.into_inner();
        let td = trust_domain(request.core_configuration.as_ref());
        let response = match self.plugin.validate(td, &request.hcl_configuration) {
            Ok(()) => ValidateResponse {
                valid: true,
                notes: vec!["configuration valid".to_owned()],
            },
            Err(error) => ValidateResponse {
                valid: false,
                notes: vec![error.to_string()],
            },
        };
        Ok(Response::new(response))
    }
}
