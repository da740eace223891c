// The durable outbox: sends not yet acknowledged, in IndexedDB, one user's at a time. A tab
// that reloads (or a browser that restarts) finds them and sends them again with their
// original ids; the server stores each id once.
import type { UserRef } from "./types.js";

/** A send not yet acknowledged by the server. */
export interface PendingSend {
  /** The message id it is (and will be) sent with. */
  id: string;
  to: UserRef;
  content: string;
  /** When it was made, ms since the epoch. */
  queuedAt: number;
}

export interface Outbox {
  put(send: PendingSend): Promise<void>;
  delete(id: string): Promise<void>;
  /** Oldest first. */
  list(): Promise<PendingSend[]>;
}

const DB_NAME = "chat-sdk";
const STORE = "outbox";

interface Row extends PendingSend {
  user: string;
}

/** Nothing stored: what a client without a user, or without IndexedDB, uses. */
export class MemoryOutbox implements Outbox {
  put(): Promise<void> {
    return Promise.resolve();
  }
  delete(): Promise<void> {
    return Promise.resolve();
  }
  list(): Promise<PendingSend[]> {
    return Promise.resolve([]);
  }
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

let database: Promise<IDBDatabase | null> | undefined;

function openVersion(version: number | undefined): Promise<IDBDatabase | null> {
  return new Promise<IDBDatabase | null>((resolve) => {
    if (typeof indexedDB === "undefined") return resolve(null);
    let req: IDBOpenDBRequest;
    try {
      req = version === undefined ? indexedDB.open(DB_NAME) : indexedDB.open(DB_NAME, version);
    } catch {
      return resolve(null);
    }
    req.onupgradeneeded = () => {
      if (req.result.objectStoreNames.contains(STORE)) return;
      const store = req.result.createObjectStore(STORE, { keyPath: "id" });
      store.createIndex("user", "user");
    };
    req.onsuccess = () => {
      const db = req.result;
      // Another tab upgrading the database: let it, and open again next time.
      db.onversionchange = () => {
        db.close();
        database = undefined;
      };
      resolve(db);
    };
    req.onerror = () => resolve(null);
    req.onblocked = () => resolve(null);
  });
}

/** The database, or null where IndexedDB is missing or refused (some private modes). */
function open(): Promise<IDBDatabase | null> {
  database ??= openVersion(undefined).then(async (db) => {
    if (!db || db.objectStoreNames.contains(STORE)) return db;
    // A database of that name without the store (made by something else): add the store.
    const next = db.version + 1;
    db.close();
    return openVersion(next);
  });
  return database;
}

class IndexedDbOutbox implements Outbox {
  constructor(
    private readonly db: IDBDatabase,
    private readonly user: string,
  ) {}

  put(send: PendingSend): Promise<void> {
    const tx = this.db.transaction(STORE, "readwrite");
    const row: Row = { ...send, user: this.user };
    tx.objectStore(STORE).put(row);
    return done(tx);
  }

  delete(id: string): Promise<void> {
    const tx = this.db.transaction(STORE, "readwrite");
    tx.objectStore(STORE).delete(id);
    return done(tx);
  }

  async list(): Promise<PendingSend[]> {
    const tx = this.db.transaction(STORE, "readonly");
    const rows = await request(tx.objectStore(STORE).index("user").getAll(this.user) as IDBRequest<Row[]>);
    return rows
      .sort((a, b) => a.queuedAt - b.queuedAt || (a.id < b.id ? -1 : 1))
      .map(({ id, to, content, queuedAt }) => ({ id, to, content, queuedAt }));
  }
}

/** The outbox of `user` in IndexedDB, or null where IndexedDB cannot be used. */
export async function openOutbox(user: string): Promise<Outbox | null> {
  const db = await open();
  return db ? new IndexedDbOutbox(db, user) : null;
}

/** Removes every stored send of `user`. */
export async function clearOutbox(user: string): Promise<void> {
  const db = await open();
  if (!db) return;
  const tx = db.transaction(STORE, "readwrite");
  const store = tx.objectStore(STORE);
  const keys = await request(store.index("user").getAllKeys(user));
  for (const key of keys) store.delete(key);
  await done(tx);
}
