//! A TCP load balancer for the cluster scenario, as nginx or HAProxy in TCP mode would be:
//! round robin over the nodes, no stickiness, skipping a node that refuses the connection.
//! A node that dies takes its connections with it; the clients reconnect through here and
//! land on a node that is up.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct Balancer {
    pub port: u16,
    task: JoinHandle<()>,
}

impl Balancer {
    /// Listens on a free port and spreads connections over the nodes on `backends`.
    pub async fn start(backends: Vec<u16>) -> Result<Balancer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let next = Arc::new(AtomicUsize::new(0));
        let backends: Arc<[u16]> = backends.into();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { continue };
                let (backends, next) = (Arc::clone(&backends), Arc::clone(&next));
                tokio::spawn(async move {
                    let first = next.fetch_add(1, Ordering::Relaxed);
                    for k in 0..backends.len() {
                        let node = backends[(first + k) % backends.len()];
                        if let Ok(mut server) = TcpStream::connect(("127.0.0.1", node)).await {
                            let _ = client.set_nodelay(true);
                            let _ = server.set_nodelay(true);
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                            return;
                        }
                    }
                    // No node is up: the client's connection closes and it retries.
                });
            }
        });
        Ok(Balancer { port, task })
    }

    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
