"use client";

import { X } from "lucide-react";
import { Toast } from "radix-ui";
import { usePathname } from "next/navigation";
import { createContext, useCallback, useContext, useEffect, useRef, useState, type ReactNode } from "react";
import { cn } from "@/lib/utils";

export interface ToastInput {
  title: string;
  description?: string;
  variant?: "default" | "destructive";
  /** ms; default 6000 */
  duration?: number;
  /** Belongs to the page it came from (an Undo, a failed change there): it goes when the user leaves that page. */
  pageOnly?: boolean;
  /** One button in the toast (e.g. Undo); it closes the toast. */
  action?: { label: string; onClick: () => void };
}

interface ToastItem extends ToastInput {
  id: number;
  open: boolean;
  /** The page visit it was shown on (each navigation starts a new one). */
  visit: number;
}

type ToastFn = (toast: ToastInput) => void;

const ToastContext = createContext<ToastFn | null>(null);

const MAX_TOASTS = 4;

/**
 * Notifications as toasts (Radix Toast: an ARIA live region, F8 jumps to it,
 * swipe or Escape dismisses). `useToast()` returns the function that shows one.
 */
export function ToastProvider({ children }: { children: ReactNode }) {
  const [items, setItems] = useState<ToastItem[]>([]);
  const nextId = useRef(1);
  const pathname = usePathname();
  const [visit, setVisit] = useState({ pathname, n: 0 });
  if (visit.pathname !== pathname) setVisit({ pathname, n: visit.n + 1 });
  const currentVisit = useRef(0);
  useEffect(() => {
    currentVisit.current = visit.n;
  }, [visit]);

  const toast = useCallback<ToastFn>((input) => {
    const id = nextId.current++;
    setItems((prev) => [...prev.filter((t) => t.open).slice(-(MAX_TOASTS - 1)), { ...input, id, open: true, visit: currentVisit.current }]);
  }, []);

  return (
    <ToastContext.Provider value={toast}>
      <Toast.Provider swipeDirection="right" label="Notification">
        {children}
        {items.map((item) => (
          <Toast.Root
            key={item.id}
            // A page's toasts (its errors, its Undo) leave with it.
            open={item.open && (item.pageOnly !== true || item.visit === visit.n)}
            duration={item.duration ?? 6_000}
            onOpenChange={(open) => {
              if (!open) setItems((prev) => prev.map((t) => (t.id === item.id ? { ...t, open: false } : t)));
            }}
            data-testid="toast"
            className={cn(
              "grid grid-cols-[1fr_auto] items-start gap-x-3 gap-y-1 rounded-lg border border-border bg-popover p-4 text-popover-foreground shadow-lg",
              "data-[state=closed]:opacity-0 data-[swipe=move]:translate-x-[var(--radix-toast-swipe-move-x)] transition-opacity",
              item.variant === "destructive" && "border-destructive/50",
            )}
          >
            <Toast.Title className={cn("text-sm font-semibold", item.variant === "destructive" && "text-destructive")}>
              {item.title}
            </Toast.Title>
            <Toast.Close aria-label="Dismiss" className="row-span-2 rounded-sm p-1 text-muted-foreground hover:text-foreground">
              <X className="size-4" aria-hidden="true" />
            </Toast.Close>
            {item.description ? <Toast.Description className="text-sm text-muted-foreground">{item.description}</Toast.Description> : null}
            {item.action ? (
              <Toast.Action
                altText={item.action.label}
                onClick={item.action.onClick}
                className="col-start-1 mt-1 inline-flex h-8 w-fit items-center rounded-md border border-border px-3 text-sm font-medium hover:bg-accent focus-visible:ring-2 focus-visible:ring-ring focus-visible:outline-none"
              >
                {item.action.label}
              </Toast.Action>
            ) : null}
          </Toast.Root>
        ))}
        <Toast.Viewport className="fixed right-0 bottom-0 z-[100] m-0 flex w-full max-w-sm list-none flex-col gap-2 p-4 outline-none" />
      </Toast.Provider>
    </ToastContext.Provider>
  );
}

export function useToast(): ToastFn {
  const toast = useContext(ToastContext);
  if (!toast) throw new Error("useToast must be used inside <ToastProvider>");
  return toast;
}
