//! One command or MULTI pipeline on the shared connection, behind one trait so the
//! store can send either and retry it once after a dropped connection.

use redis::aio::ConnectionManager;

/// A command or a pipeline, sent on the shared connection.
pub(super) trait Query: Sync {
    fn send<'a, T: redis::FromRedisValue + Send + 'a>(
        &'a self,
        conn: &'a mut ConnectionManager,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = redis::RedisResult<T>> + Send + 'a>>;
}

impl Query for redis::Cmd {
    fn send<'a, T: redis::FromRedisValue + Send + 'a>(
        &'a self,
        conn: &'a mut ConnectionManager,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = redis::RedisResult<T>> + Send + 'a>>
    {
        Box::pin(self.query_async(conn))
    }
}

impl Query for redis::Pipeline {
    fn send<'a, T: redis::FromRedisValue + Send + 'a>(
        &'a self,
        conn: &'a mut ConnectionManager,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = redis::RedisResult<T>> + Send + 'a>>
    {
        Box::pin(self.query_async(conn))
    }
}
