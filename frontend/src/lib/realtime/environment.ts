import type { Environment, EnvironmentEvent, Timers } from "./types";

export const browserTimers: Timers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof globalThis.setTimeout>),
};

/** navigator.onLine + window online/offline + document visibilitychange; inert outside a browser. */
export function browserEnvironment(): Environment {
  const hasWindow = typeof window !== "undefined";
  return {
    isOnline: () => (typeof navigator === "undefined" ? true : navigator.onLine !== false),
    on(event: EnvironmentEvent, listener: () => void) {
      if (!hasWindow) return () => {};
      if (event === "visible") {
        const onVisibility = () => {
          if (document.visibilityState === "visible") listener();
        };
        document.addEventListener("visibilitychange", onVisibility);
        return () => document.removeEventListener("visibilitychange", onVisibility);
      }
      window.addEventListener(event, listener);
      return () => window.removeEventListener(event, listener);
    },
  };
}

/** `ws(s)://<this origin>/ws`, following the page's protocol. */
export function sameOriginSocketUrl(path = "/ws"): string {
  if (typeof location === "undefined") return `ws://127.0.0.1${path}`;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}
