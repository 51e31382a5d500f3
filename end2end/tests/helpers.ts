import { expect, Page } from '@playwright/test';

export const admin = {
  org: 'Contoso Pharma',
  name: 'Ada Admin',
  email: 'ada@contoso.example',
  password: 'correct horse battery staple',
};

/** Waits until the wasm has hydrated the page, so clicks are handled without a reload. */
export async function hydrated(page: Page) {
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
}

export async function signIn(page: Page, email = admin.email, password = admin.password) {
  await page.goto('/sign-in');
  await hydrated(page);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}
