//! Every write counts against the write rate limits: each mutation field executed, whatever
//! it is and however it arrived (one request, a batch, aliases, a socket), costs one, per user
//! and per client address. A batch of 16 operations with 50 aliases each is 800 writes, not
//! one request. Mutations added later are counted without asking.
//!
//! This comes on top of the limits of particular mutations (login, register, refresh, send),
//! which are tighter and keyed by what they protect.
use std::sync::Arc;

use async_graphql::{
    ServerError, ServerResult, Value,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo},
};
use uuid::Uuid;

use crate::graphql::guard::Caller;
use crate::{
    config::RateLimits,
    error::AppError,
    service::rate_limit::{ClientNet, RateLimit},
};

pub struct WriteLimits(Arc<Limits>);

struct Limits {
    per_user: RateLimit<Uuid>,
    per_ip: RateLimit<ClientNet>,
}

impl WriteLimits {
    pub fn new(limits: &RateLimits) -> Self {
        Self(Arc::new(Limits {
            per_user: RateLimit::per_minute("write_user", limits.write_per_user),
            per_ip: RateLimit::per_minute("write_ip", limits.write_per_ip),
        }))
    }
}

impl ExtensionFactory for WriteLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(WriteLimitsExtension(self.0.clone()))
    }
}

struct WriteLimitsExtension(Arc<Limits>);

impl Limits {
    fn check(&self, caller: Option<&Caller>) -> Result<(), AppError> {
        let Some(caller) = caller else {
            return Ok(());
        };
        self.per_ip.check(&caller.ip.into())?;
        if let Ok(viewer) = &caller.auth {
            self.per_user.check(&viewer.user_id)?;
        }
        Ok(())
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for WriteLimitsExtension {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        // Mutation fields are the root's; nothing below them writes.
        if info.parent_type == "Mutation"
            && let Err(refused) = self.0.check(ctx.data_opt::<Caller>())
        {
            let mut error = ServerError::new(refused.to_string(), Some(info.field.name.pos));
            error.source = Some(Arc::new(refused));
            error.path = vec![async_graphql::PathSegment::Field(
                info.alias.unwrap_or(info.name).to_owned(),
            )];
            return Err(error);
        }
        next.run(ctx, info).await
    }
}
