import type { Metadata, Viewport } from "next";
import type { ReactNode } from "react";
import { SessionStoreProvider } from "@/components/providers/session-store-provider";
import { ToastProvider } from "@/components/toaster";
import { themeScript } from "@/lib/theme";
import "./globals.css";

export const metadata: Metadata = {
  title: { default: "Hubbub", template: "%s · Hubbub" },
  description: "Real-time workspaces.",
};

export const viewport: Viewport = {
  themeColor: [
    { media: "(prefers-color-scheme: light)", color: "#ffffff" },
    { media: "(prefers-color-scheme: dark)", color: "#0a0a0a" },
  ],
};

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    // The theme script changes <html class> before hydration.
    <html lang="en" suppressHydrationWarning>
      <head>
        <script dangerouslySetInnerHTML={{ __html: themeScript }} />
      </head>
      <body className="min-h-dvh font-sans">
        <SessionStoreProvider>
          <ToastProvider>{children}</ToastProvider>
        </SessionStoreProvider>
      </body>
    </html>
  );
}
