"use client";
import { useEffect, useState } from "react";
import init, { ChatClient, type Status } from "chat-sdk";

// Loads the WebAssembly once per page, however many components ask.
let ready: Promise<void> | null = null;
function loadSdk(): Promise<void> {
  ready ??= init();
  return ready;
}

/**
 * The idiomatic way to hold a chat-sdk client in React: created after the wasm is loaded,
 * in the browser only (inside an effect, never during server rendering), connected once,
 * closed and freed on unmount (and re-created by StrictMode's double mount without leaking).
 * Tokens come from this app's own route handler, which knows who is signed in.
 */
export function useChat(url: string, tokenUrl = "/api/chat-token"): { client: ChatClient | null; status: Status } {
  const [client, setClient] = useState<ChatClient | null>(null);
  const [status, setStatus] = useState<Status>("idle");

  useEffect(() => {
    let chat: ChatClient | null = null;
    let cancelled = false;
    loadSdk().then(() => {
      if (cancelled) return;
      chat = new ChatClient({
        url,
        getToken: async () => {
          const response = await fetch(tokenUrl, { cache: "no-store" });
          if (!response.ok) throw new Error(`${tokenUrl} answered HTTP ${response.status}`);
          const body: { token: string } = await response.json();
          return body.token;
        },
      });
      chat.on("status", (event) => setStatus(event.status));
      chat.connect();
      setClient(chat);
    });
    return () => {
      cancelled = true;
      chat?.close();
      chat?.free();
      setClient(null);
    };
  }, [url, tokenUrl]);

  return { client, status };
}
