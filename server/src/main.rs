//! `chat-server`: see `chat_server::cli` for the commands.

// musl's malloc is slow under many threads; the static builds (npm/build.sh) use mimalloc.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    chat_server::cli::main()
}
