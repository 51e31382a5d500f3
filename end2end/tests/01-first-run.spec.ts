import { expect, test } from '@playwright/test';
import { admin, hydrated, signIn } from './helpers';

test('first run: set up, sign out, wrong password, sign in, home', async ({ page }) => {
  await page.goto('/');
  await expect(page).toHaveURL(/\/setup$/);
  await hydrated(page);

  await page.getByLabel('Organisation name').fill(admin.org);
  await page.getByLabel('Your name').fill(admin.name);
  await page.getByLabel('Email').fill(admin.email);
  await page.getByLabel('Password', { exact: true }).fill(admin.password);
  await page.getByLabel('Confirm password').fill(admin.password);
  await page.getByRole('button', { name: 'Create organisation' }).click();

  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText(admin.org);
  await expect(page.getByTestId('org-name')).toHaveText(admin.org);

  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/sign-in$/);

  await signIn(page, admin.email, 'not the password at all');
  await expect(page.getByRole('alert')).toHaveText('Wrong email or password.');
  await expect(page).toHaveURL(/\/sign-in$/);

  await page.getByLabel('Password').fill(admin.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText(admin.org);
  await expect(page.getByRole('cell', { name: admin.email })).toBeVisible();

  // The first-run page can never be used again once an organisation exists.
  await page.goto('/setup');
  await expect(page).not.toHaveURL(/\/setup$/);
});

test('a fresh browser cannot reach the setup page once set up', async ({ browser }) => {
  // A fresh context has no session; the install is already set up, so /setup redirects away.
  const page = await browser.newPage();
  await page.goto('/setup');
  await expect(page).toHaveURL(/\/sign-in$/);
  await page.close();
});
